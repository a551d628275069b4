-- Apply outbox shares to one agent, each at most once. All keys are in the agent's slot.
-- KEYS[1]: the agent's markers (hash: partition -> last position applied); KEYS[2..]: the
-- keys the shares write. ARGV[1]: msgpack {{partition, position, counters, waiting}, ...}
-- in position order per partition:
--   counters {{key_index, expire_at_ms, field, n, field, n, ...}, ...}
--   waiting  {{key_index, expire_at_ms, {member, ...removed}, {score, member, ...added}}, ...}
-- ARGV[2]: the markers' TTL (ms). Returns the number of shares applied (the rest were seen).
local shares = cmsgpack.unpack(ARGV[1])
local applied = 0
for _, share in ipairs(shares) do
  local seen = tonumber(redis.call('HGET', KEYS[1], share[1]) or '0')
  if share[2] > seen then
    for _, h in ipairs(share[3]) do
      local key = KEYS[h[1]]
      for i = 3, #h, 2 do redis.call('HINCRBY', key, h[i], h[i + 1]) end
      redis.call('PEXPIREAT', key, h[2])
    end
    for _, w in ipairs(share[4]) do
      local key = KEYS[w[1]]
      if #w[3] > 0 then redis.call('ZREM', key, unpack(w[3])) end
      if #w[4] > 0 then redis.call('ZADD', key, unpack(w[4])) end
      redis.call('PEXPIREAT', key, w[2])
    end
    redis.call('HSET', KEYS[1], share[1], share[2])
    applied = applied + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return applied
