-- Apply outbox shares to one agent, each at most once. All keys are in the agent's slot.
-- KEYS[1]: the agent's markers (hash: partition -> last position applied); KEYS[2..]: the
-- keys the shares write. ARGV[1]: msgpack {{partition, position, counters, waiting}, ...}
-- in position order per partition:
--   counters {{key_index, expire_at_ms, field, n, field, n, ...}, ...}
--   waiting  {{key_index, expire_at_ms, {member, ...removed}, {score, member, ...added}}, ...}
-- ARGV[2]: the markers' TTL (ms). Returns the number of shares applied (the rest were seen).
--
-- Everything is checked before the first write: a share written in part and then failed
-- would be counted again by every retry, its marker never set.
local shares = cmsgpack.unpack(ARGV[1])
check_integer_arg(ARGV[2], 'marker TTL')
check(type(shares) == 'table', 'shares are not a list')
check_type(KEYS[1], 'hash')

local function check_key_index(index, wanted, where)
  check(is_integer(index) and index >= 2 and KEYS[index] ~= nil, where .. ': no key ' .. tostring(index))
  check_type(KEYS[index], wanted)
end

local function check_counters(h, where)
  check(type(h) == 'table' and #h % 2 == 0 and #h >= 2, where .. ': not {key, expiry, field, n, ...}')
  check_key_index(h[1], 'hash', where)
  check(is_integer(h[2]), where .. ': expiry is not an integer')
  for i = 3, #h, 2 do
    check(type(h[i]) == 'string' and is_integer(h[i + 1]), where .. ': field ' .. tostring(h[i]))
  end
end

local function check_waiting(w, where)
  check(type(w) == 'table' and #w == 4, where .. ': not {key, expiry, removed, added}')
  check_key_index(w[1], 'zset', where)
  check(is_integer(w[2]), where .. ': expiry is not an integer')
  check(type(w[3]) == 'table' and type(w[4]) == 'table' and #w[4] % 2 == 0, where .. ': bad member lists')
  for _, member in ipairs(w[3]) do check(type(member) == 'string', where .. ': removed member') end
  for i = 1, #w[4], 2 do
    check(type(w[4][i]) == 'number' and type(w[4][i + 1]) == 'string', where .. ': added member')
  end
end

for s, share in ipairs(shares) do
  local where = 'share ' .. s
  check(type(share) == 'table' and is_integer(share[1]) and is_integer(share[2]), where .. ': no position')
  check(type(share[3]) == 'table' and type(share[4]) == 'table', where .. ': no counters or waiting')
  for _, h in ipairs(share[3]) do check_counters(h, where) end
  for _, w in ipairs(share[4]) do check_waiting(w, where) end
end

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
      call_chunked('ZREM', key, nil, w[3], 1, #w[3], 1)
      call_chunked('ZADD', key, nil, w[4], 1, #w[4], 2)
      redis.call('PEXPIREAT', key, w[2])
    end
    redis.call('HSET', KEYS[1], share[1], share[2])
    applied = applied + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return applied
