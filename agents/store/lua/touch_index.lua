-- Record members as seen, keeping each member's latest time: re-applying an older outbox
-- never moves a member back. Members unseen for longer than the TTL leave the index, so an
-- index that is touched every day still forgets agents who left the shop long ago.
-- Every touch of a shop's agents index (a tagged key) also writes the index's change log
-- (change_keys in prelude.lua): a counter, and each touched member at the counter's new value.
-- `kp:shops` has none: the leader reads it whole, and its log would need a key outside `kp:`. The writer touches after the writes it
-- indexes, so the leader re-reads exactly the members touched since its last look (the log
-- counts touches, not times: clocks that disagree and late replays cannot hide one).
-- KEYS[1]: the index (sorted set). ARGV: ttl_ms, score, member, ...
check_integer_arg(ARGV[1], 'TTL')
check(#ARGV % 2 == 1, 'scores and members do not pair up')
check_type(KEYS[1], 'zset')
local logged = string.find(KEYS[1], '{', 1, true) ~= nil
local log_key, version_key
if logged then
  log_key, version_key = change_keys(KEYS[1])
  check_type(log_key, 'zset')
  check_type(version_key, 'hash')
end
local newest = nil
for i = 2, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  check(is_integer(score), 'score ' .. ARGV[i] .. ' is not an integer')
  if newest == nil or score > newest then newest = score end
end
if newest == nil then return 0 end
call_chunked('ZADD', KEYS[1], 'GT', ARGV, 2, #ARGV, 2)
local cutoff = '(' .. (newest - tonumber(ARGV[1]))
if logged then
  local version = redis.call('HINCRBY', version_key, 'n', 1)
  -- A log that expired or was deleted starts again at 1: its birth tells the leader so, even
  -- once the new count has passed the one it knew.
  if version == 1 then
    local now = redis.call('TIME')
    redis.call('HSET', version_key, 'b', now[1] .. '.' .. now[2])
  end
  local touched = {}
  for i = 2, #ARGV, 2 do
    touched[#touched + 1] = version
    touched[#touched + 1] = ARGV[i + 1]
  end
  call_chunked('ZADD', log_key, nil, touched, 1, #touched, 2)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  call_chunked('ZREM', log_key, nil, gone, 1, #gone, 1)
  redis.call('PEXPIRE', log_key, ARGV[1])
  redis.call('PEXPIRE', version_key, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
