-- The leader's sample of a few shops' waiting buyers for this minute (the floor's trend): on one
-- server, a call per FLOOR_CHANGES_PER_CALL shops; on a cluster, a shop a call (one slot). A
-- round at 1,000 shops sent 2,000 commands (HSET, PEXPIRE), ~25 ms of the leader's Python.
-- KEYS[i]: shop i's trend ring. ARGV[1]: the ring's field (minute % ring), ARGV[2]: the value's
-- minute, ARGV[3]: the rings' time to live (ms), ARGV[3 + i]: shop i's waiting buyers.
check(#ARGV == 3 + #KEYS, 'record_waiting needs a count per ring')
for i = 1, 3 + #KEYS do check_integer_arg(ARGV[i], 'argument ' .. i) end
for _, key in ipairs(KEYS) do check_type(key, 'hash') end
local value_prefix = ARGV[2] .. ':'
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[1], value_prefix .. ARGV[3 + i])
  redis.call('PEXPIRE', key, ARGV[3])
end
return #KEYS
