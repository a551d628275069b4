-- Record members as seen, keeping each member's latest time: re-applying an older outbox
-- never moves a member back. Members unseen for longer than the TTL leave the index, so an
-- index that is touched every day still forgets agents who left the shop long ago.
-- KEYS[1]: the index (sorted set). ARGV: ttl_ms, score, member, ...
local members = {'GT'}
local newest = 0
for i = 2, #ARGV do
  members[#members + 1] = ARGV[i]
  if i % 2 == 0 and tonumber(ARGV[i]) > newest then newest = tonumber(ARGV[i]) end
end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (newest - tonumber(ARGV[1])))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
