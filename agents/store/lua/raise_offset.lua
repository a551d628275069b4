-- Raise an input partition's last applied offset, never lower it: two workers that both held
-- the partition across a rebalance may finish in either order (kefu.agents: docs/redis-layout.md).
-- KEYS[1]: the offset key; KEYS[2] (optional): its raise log. ARGV[1]: the offset; ARGV[2]: its
-- TTL (ms); ARGV[3] (with KEYS[2]): the raise's id.
-- Returns the offset found before (-1: none). The records above it are this raise's to count:
-- those at or below it were raised, and counted, by another worker's. When raised, the log gets
-- `<id>|<found>` (its last 64 raises), so a raise whose reply was lost can ask whether it landed.
check_integer_arg(ARGV[1], 'offset')
check_integer_arg(ARGV[2], 'TTL')
check_type(KEYS[1], 'string')
if KEYS[2] then check_type(KEYS[2], 'list') end
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if KEYS[2] and ARGV[3] and ARGV[3] ~= '' then
    redis.call('LPUSH', KEYS[2], ARGV[3] .. '|' .. current)
    redis.call('LTRIM', KEYS[2], 0, 63)
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  return current
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return current
