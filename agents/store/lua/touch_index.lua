-- Record members as seen, keeping each member's latest time: re-applying an older outbox
-- never moves a member back. KEYS[1]: the index (sorted set). ARGV: ttl_ms, score, member, ...
local members = {'GT'}
for i = 2, #ARGV do members[#members + 1] = ARGV[i] end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
