-- Replace a hash's fields in one step (the firing-alerts set: a crash never leaves it empty).
-- KEYS[1]: the hash. ARGV: ttl_ms, field, value, field, value, ... (none: the hash is removed)
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  local fields = {}
  for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
