-- Change the firing-alerts set by its difference, only for the leader of the current epoch: a
-- round at 10,000 firing alerts changes a few, and replace_alerts.lua rewrote them all.
-- KEYS[1]: the hash (field `epoch`; field `unsent`, the alert events stored and not yet known
-- sent; and `alert\x1fshop\x1fagent` -> episode start ms).
-- ARGV: epoch, ttl_ms, unsent ('' for none: the field is deleted), fields held before (epoch
--       and unsent excluded), removed count, removed field..., then field, start, field,
--       start, ... (added or started anew).
-- Returns 1 when written; 0 when another leader has taken a newer epoch; 2 when the hash does
-- not hold as many fields as the caller read (its difference would not give the set it means):
-- nothing is written for 0 or 2.
-- Everything is checked before the first write: a failure after it would leave half a change.
check_integer_arg(ARGV[1], 'epoch')
check_integer_arg(ARGV[2], 'TTL')
check_integer_arg(ARGV[4], 'count of fields held')
check_integer_arg(ARGV[5], 'count of removed fields')
local removed_last = 5 + tonumber(ARGV[5])
check(tonumber(ARGV[5]) >= 0 and removed_last <= #ARGV, 'removed count out of range: ' .. ARGV[5])
check((#ARGV - removed_last) % 2 == 0, 'fields and episode starts do not pair up')
-- An alert field always holds \x1f: the epoch and unsent fields are never removed or
-- overwritten as alerts here.
for i = 6, removed_last do
  check(string.find(ARGV[i], '\31', 1, true) ~= nil, 'not an alert field: ' .. ARGV[i])
end
for i = removed_last + 1, #ARGV, 2 do
  check(string.find(ARGV[i], '\31', 1, true) ~= nil, 'not an alert field: ' .. ARGV[i])
  check_integer_arg(ARGV[i + 1], 'episode start of ' .. ARGV[i])
end
check_type(KEYS[1], 'hash')
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
local others = 1 + redis.call('HEXISTS', KEYS[1], 'unsent')
if redis.call('HLEN', KEYS[1]) ~= tonumber(ARGV[4]) + others then return 2 end
call_chunked('HDEL', KEYS[1], nil, ARGV, 6, removed_last, 1)
call_chunked('HSET', KEYS[1], nil, ARGV, removed_last + 1, #ARGV, 2)
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'unsent')
else
  redis.call('HSET', KEYS[1], 'unsent', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
