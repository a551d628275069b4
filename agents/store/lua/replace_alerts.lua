-- Replace the firing-alerts set in one step, only for the leader of the current epoch.
-- KEYS[1]: the hash (field `epoch`, and `alert\x1fshop\x1fagent` -> episode start ms).
-- ARGV: epoch, ttl_ms, field, start, field, start, ...
-- Returns 1 when written, 0 when another leader has taken a newer epoch (nothing written).
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local fields = {'epoch', ARGV[1]}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
