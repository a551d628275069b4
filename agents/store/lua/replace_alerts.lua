-- Replace the firing-alerts set in one step, only for the leader of the current epoch.
-- KEYS[1]: the hash (field `epoch`; field `unsent`, the alert events stored and not yet known
-- sent; and `alert\x1fshop\x1fagent` -> episode start ms).
-- ARGV: epoch, ttl_ms, unsent ('' for none), field, start, field, start, ...
-- Returns 1 when written, 0 when another leader has taken a newer epoch (nothing written).
-- Checked before the DEL: a failure after it would lose the epoch and every episode start.
check_integer_arg(ARGV[1], 'epoch')
check_integer_arg(ARGV[2], 'TTL')
check(#ARGV % 2 == 1, 'fields and episode starts do not pair up')
for i = 5, #ARGV, 2 do check_integer_arg(ARGV[i], 'episode start of ' .. ARGV[i - 1]) end
check_type(KEYS[1], 'hash')
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'unsent', ARGV[3]) end
call_chunked('HSET', KEYS[1], nil, ARGV, 4, #ARGV, 2)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
