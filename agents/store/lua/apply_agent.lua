-- Apply outbox shares to one agent, each at most once. All keys are in the agent's slot.
-- KEYS[1]: the agent's markers (hash: partition -> last position applied); KEYS[2..]: the
-- keys the shares write. ARGV[1]: msgpack {{partition, position, counters, waiting, details}, ...}
-- in position order per partition:
--   counters {{key_index, expire_at_ms, field, n, field, n, ...}, ...}
--   waiting  {{key_index, expire_at_ms, {member, ...removed}, {score, member, ...added}}, ...}
--   details  {{key_index, expire_at_ms, {field, row_argv_index, ...set}, {field, ...deleted}}, ...}
--            (the drill-down rows; absent in an entry an older worker wrote)
-- ARGV[2..n-1]: the rows, binary (cmsgpack reads no msgpack bin); ARGV[n], the last: the
-- markers' TTL (ms). Returns the number of shares applied (the rest were seen).
--
-- Every share that writes a day bucket also notes, in the agent's day log (`<tag>:dv`, a hash),
-- a number of the agent's own that only grows ('#', since the log's birth '@') against each day
-- it wrote: the leader keeps
-- the days before today while their numbers stand still (floor_reads.lua).
--
-- Everything is checked before the first write: a share written in part and then failed
-- would be counted again by every retry, its marker never set.
local shares = cmsgpack.unpack(ARGV[1])
local marker_ttl = ARGV[#ARGV]
check_integer_arg(marker_ttl, 'marker TTL')
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

local function check_details(d, where)
  check(type(d) == 'table' and #d == 4, where .. ': not {key, expiry, rows, deleted}')
  check_key_index(d[1], 'hash', where)
  check(is_integer(d[2]), where .. ': expiry is not an integer')
  check(type(d[3]) == 'table' and type(d[4]) == 'table' and #d[3] % 2 == 0, where .. ': bad row lists')
  for i = 1, #d[3], 2 do
    local row = d[3][i + 1]
    check(type(d[3][i]) == 'string', where .. ': row field')
    check(is_integer(row) and row >= 2 and row < #ARGV, where .. ': no row ' .. tostring(row))
  end
  for _, field in ipairs(d[4]) do check(type(field) == 'string', where .. ': deleted field') end
end

for s, share in ipairs(shares) do
  local where = 'share ' .. s
  check(type(share) == 'table' and is_integer(share[1]) and is_integer(share[2]), where .. ': no position')
  check(type(share[3]) == 'table' and type(share[4]) == 'table', where .. ': no counters or waiting')
  check(share[5] == nil or type(share[5]) == 'table', where .. ': details are not a list')
  for _, h in ipairs(share[3]) do check_counters(h, where) end
  for _, w in ipairs(share[4]) do check_waiting(w, where) end
  for _, d in ipairs(share[5] or {}) do check_details(d, where) end
end

local applied = 0
local day_log = string.sub(KEYS[1], 1, -3) .. ':dv'
local day_logged = false
for _, share in ipairs(shares) do
  local seen = tonumber(redis.call('HGET', KEYS[1], share[1]) or '0')
  if share[2] > seen then
    local day_number = nil
    for _, h in ipairs(share[3]) do
      local key = KEYS[h[1]]
      for i = 3, #h, 2 do redis.call('HINCRBY', key, h[i], h[i + 1]) end
      redis.call('PEXPIREAT', key, h[2])
      local day_at = string.find(key, '}:d:', 1, true)  -- a day bucket: `<tag>:d:<day>`
      if day_at then
        local day = string.sub(key, day_at + 4)
        if not day_number then
          day_number = redis.call('HINCRBY', day_log, '#', 1)
          -- A log that expired starts again at 1: its birth (this share) tells the two apart.
          if day_number == 1 then redis.call('HSET', day_log, '@', share[1] .. ':' .. share[2]) end
        end
        redis.call('HSET', day_log, day, day_number)
        day_logged = true
      end
    end
    for _, w in ipairs(share[4]) do
      local key = KEYS[w[1]]
      call_chunked('ZREM', key, nil, w[3], 1, #w[3], 1)
      call_chunked('ZADD', key, nil, w[4], 1, #w[4], 2)
      redis.call('PEXPIREAT', key, w[2])
    end
    for _, d in ipairs(share[5] or {}) do
      local key = KEYS[d[1]]
      call_chunked('HDEL', key, nil, d[4], 1, #d[4], 1)
      local rows = {}
      for i = 1, #d[3], 2 do
        rows[i], rows[i + 1] = d[3][i], ARGV[d[3][i + 1]]
      end
      call_chunked('HSET', key, nil, rows, 1, #rows, 2)
      redis.call('PEXPIREAT', key, d[2])
    end
    redis.call('HSET', KEYS[1], share[1], share[2])
    applied = applied + 1
  end
end
redis.call('PEXPIRE', KEYS[1], marker_ttl)
if day_logged then redis.call('PEXPIRE', day_log, marker_ttl) end
return applied
