-- Raise an input partition's last applied offset, never lower it: two workers that both held
-- the partition across a rebalance may finish in either order (kefu.agents: docs/redis-layout.md).
-- KEYS[1]: the offset key. ARGV[1]: the offset; ARGV[2]: its TTL (ms). Returns 1 when raised.
check_integer_arg(ARGV[1], 'offset')
check_integer_arg(ARGV[2], 'TTL')
check_type(KEYS[1], 'string')
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
