-- Record members as seen, keeping each member's latest time: re-applying an older outbox
-- never moves a member back. Members unseen for longer than the TTL leave the index, so an
-- index that is touched every day still forgets agents who left the shop long ago.
-- KEYS[1]: the index (sorted set). ARGV: ttl_ms, score, member, ...
check_integer_arg(ARGV[1], 'TTL')
check(#ARGV % 2 == 1, 'scores and members do not pair up')
check_type(KEYS[1], 'zset')
local newest = nil
for i = 2, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  check(is_integer(score), 'score ' .. ARGV[i] .. ' is not an integer')
  if newest == nil or score > newest then newest = score end
end
if newest == nil then return 0 end
call_chunked('ZADD', KEYS[1], 'GT', ARGV, 2, #ARGV, 2)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (newest - tonumber(ARGV[1])))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
