-- Apply one batch atomically: compare the partitions' offsets with what the batch was
-- computed from, and only then write states, counters, waiting sets, indexes and offsets.
-- KEYS: every key the batch touches. ARGV[1]: msgpack payload referring to keys by index:
--   [1] checks   {{key, expected}, ...}: every input partition the batch's buyers live on,
--                of both co-partitioned topics (-1 = never applied)
--   [2] states   {{key, argv, ttl_ms}, ...}: the blob is ARGV[argv] (cmsgpack has no `bin`)
--   [3] counters {{key, expire_at_ms, field, n, field, n, ...}, ...}
--   [4] waiting  {{key, expire_at_ms, {member, ...removed}, {score, member, ...added}}, ...}
--   [5] indexes  {{key, ttl_ms, score, member, ...}, ...}
--   [6] offsets  {{key, new}, ...}
--   [7] offset_ttl_ms
-- Returns {0} when applied, {1, key} when a partition moved on (nothing written).
local p = cmsgpack.unpack(ARGV[1])
for _, o in ipairs(p[1]) do
  local current = tonumber(redis.call('GET', KEYS[o[1]]) or '-1')
  if current ~= o[2] then return {1, KEYS[o[1]]} end
end
for _, s in ipairs(p[2]) do
  redis.call('SET', KEYS[s[1]], ARGV[s[2]], 'PX', s[3])
end
for _, h in ipairs(p[3]) do
  local key = KEYS[h[1]]
  for i = 3, #h, 2 do redis.call('HINCRBY', key, h[i], h[i + 1]) end
  redis.call('PEXPIREAT', key, h[2])
end
for _, w in ipairs(p[4]) do
  local key = KEYS[w[1]]
  if #w[3] > 0 then redis.call('ZREM', key, unpack(w[3])) end
  if #w[4] > 0 then redis.call('ZADD', key, unpack(w[4])) end
  redis.call('PEXPIREAT', key, w[2])
end
for _, x in ipairs(p[5]) do
  local key = KEYS[x[1]]
  local members = {}
  for i = 3, #x do members[#members + 1] = x[i] end
  redis.call('ZADD', key, unpack(members))
  redis.call('PEXPIRE', key, x[2])
end
for _, o in ipairs(p[6]) do
  redis.call('SET', KEYS[o[1]], o[2], 'PX', p[7])
end
return {0}
