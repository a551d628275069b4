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
-- A call that writes day or minute buckets also notes, in the agent's day log (`<tag>:dv`, a
-- hash), a number of the agent's own that only grows ('#', since the log's birth '@') against
-- each day it wrote, and in its minute log (`<tag>:mv`, a sorted set: minute scored by that
-- number) each minute it wrote: the leader keeps the days before today, and the whole minutes
-- of the rolling windows, while their numbers stand still (floor_reads.lua).
-- 'm#' counts the calls that kept the minute log: a writer older than the log bumps '#' alone,
-- and the leader, seeing '#' - 'm#' move, reads every minute again. The log keeps its
-- MINUTE_LOG_SIZE most recent minutes; 'm<' is the highest number it let go.
--
-- Everything is checked before the first write: a share written in part and then failed
-- would be counted again by every retry, its marker never set. That includes a cluster's
-- reshard: while the agent's slot migrates, Redis refuses a command whose key is not on this
-- node at the moment the script runs it. Redis checks KEYS before the script starts, so the
-- logs named here (not in KEYS) are read first, and the waiting sets and details hashes are
-- written per key, their removals last: no key is touched after a command of this call may
-- have deleted it (the waiting set's last buyer, a details hash's last row), but for a removal
-- longer than a chunk. Those writes come before the counters, and a retry writes them the same
-- again; the counters, then the markers (the record of what was applied) come last. (A
-- review's reshard lost a paid order: a share's marker was written, then the next share's
-- PTTL on the waiting set it had just emptied failed, before the summed counters.)
local shares = cmsgpack.unpack(ARGV[1])
local marker_ttl = ARGV[#ARGV]
check_integer_arg(marker_ttl, 'marker TTL')
check(type(shares) == 'table', 'shares are not a list')
check_type(KEYS[1], 'hash')

-- A key's type is asked once per call and wanted type: an agent's shares (one per partition of
-- a batch) name the same few buckets again and again.
local checked = {}
local function check_key_index(index, wanted, where)
  check(is_integer(index) and index >= 2 and KEYS[index] ~= nil, where .. ': no key ' .. tostring(index))
  if checked[index] ~= wanted then
    check_type(KEYS[index], wanted)
    checked[index] = wanted
  end
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
local minute_log = string.sub(KEYS[1], 1, -3) .. ':mv'
-- Not in KEYS: asked here, before any write, so that a migrating slot fails the call now.
redis.call('EXISTS', day_log)
redis.call('EXISTS', minute_log)
local MINUTE_LOG_SIZE = 128  -- a listpack at Redis's default: about 1.5 KB an agent at most
-- The day log keeps the days within this many of the newest one a call writes: the leader reads
-- the numbers of the 28d window's closed days only. Looked over every DAY_LOG_PRUNE_EVERY calls.
local DAY_LOG_DAYS, DAY_LOG_PRUNE_EVERY = 40, 32
-- The counters of every share applied, summed per key and field and written once after the
-- loop: each share adds to the same few buckets, and a call from Lua costs Redis more than the
-- command it runs. Keys keep the shares' order; a key's expiry is the last share's, as one
-- PEXPIREAT per share left it; a field is written even when its sum is 0, as before.
local sums, order, expiry = {}, {}, {}
-- The waiting sets and details hashes likewise, per key: each member's or field's last change
-- over the shares (a score or false; a row or false), written adds first and removals last.
local waits, wait_order, details, detail_order = {}, {}, {}, {}
local marks, mark_order = {}, {}  -- partition -> the last position applied, written at the end
-- A key's changes: each member's or field's last value (false: removed), in first-seen order.
local function changes_of(by_key, key_order, index)
  local changes = by_key[index]
  if not changes then
    changes = {last = {}, names = {}}
    by_key[index] = changes
    key_order[#key_order + 1] = index
  end
  return changes
end
local function change(changes, name, value)
  if changes.last[name] == nil then changes.names[#changes.names + 1] = name end
  changes.last[name] = value
end
-- The kept ones as {name, value, ...} (`value_first`: {value, name, ...}, as ZADD takes them),
-- and the removed names.
local function split(changes, value_first)
  local kept, removed = {}, {}
  for _, name in ipairs(changes.names) do
    local value = changes.last[name]
    if value then
      kept[#kept + 1] = value_first and value or name
      kept[#kept + 1] = value_first and name or value
    else
      removed[#removed + 1] = name
    end
  end
  return kept, removed
end
local day_share = nil  -- the first applied share that writes a day or minute bucket: the log's birth
for _, share in ipairs(shares) do
  local seen = marks[share[1]] or tonumber(redis.call('HGET', KEYS[1], share[1]) or '0')
  if share[2] > seen then
    for _, h in ipairs(share[3]) do
      local index = h[1]
      local fields = sums[index]
      if not fields then
        fields = {names = {}, amounts = {}}
        sums[index] = fields
        order[#order + 1] = index
      end
      for i = 3, #h, 2 do
        local name, amount = h[i], fields.amounts[h[i]]
        if amount == nil then
          fields.names[#fields.names + 1] = name
          fields.amounts[name] = h[i + 1]
        else
          fields.amounts[name] = amount + h[i + 1]
        end
      end
      expiry[index] = h[2]
      if not day_share and (string.find(KEYS[index], '}:d:', 1, true) or string.find(KEYS[index], '}:m:', 1, true)) then
        day_share = share
      end
    end
    for _, w in ipairs(share[4]) do  -- a share removes, then adds
      local set = changes_of(waits, wait_order, w[1])
      for _, member in ipairs(w[3]) do change(set, member, false) end
      for i = 1, #w[4], 2 do change(set, w[4][i + 1], w[4][i]) end
      if set.expiry == nil or w[2] > set.expiry then set.expiry = w[2] end
    end
    for _, d in ipairs(share[5] or {}) do  -- a share deletes, then sets
      local hash = changes_of(details, detail_order, d[1])
      for _, field in ipairs(d[4]) do change(hash, field, false) end
      for i = 1, #d[3], 2 do change(hash, d[3][i], ARGV[d[3][i + 1]]) end
      hash.expiry = d[2]  -- the last share's, as a PEXPIREAT per share left it
    end
    if marks[share[1]] == nil then mark_order[#mark_order + 1] = share[1] end
    marks[share[1]] = share[2]
    applied = applied + 1
  end
end
for _, index in ipairs(wait_order) do
  local key, set = KEYS[index], waits[index]
  local added, removed = split(set, true)
  call_chunked('ZADD', key, nil, added, 1, #added, 2)
  -- The set is every partition's: a share applied late (a drained outbox, an outage) carries
  -- its batch's older clock, and must not cut short, or delete, the waits of newer shares.
  -- GT alone never sets a key without expiry (a set this call just made); a set that is not
  -- there (-2) gets none. The expiry slides with removals too, as one PEXPIREAT per share did.
  local ttl = redis.call('PTTL', key)
  if ttl == -1 then
    redis.call('PEXPIREAT', key, set.expiry)
  elseif ttl >= 0 then
    redis.call('PEXPIREAT', key, set.expiry, 'GT')
  end
  call_chunked('ZREM', key, nil, removed, 1, #removed, 1)  -- last: it may delete the set
end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
for _, index in ipairs(detail_order) do
  local key, hash = KEYS[index], details[index]
  local rows, deleted = split(hash, false)
  if hash.expiry <= now_ms then
    -- Its day has left the lists (a share drained late): a PEXPIREAT per share deleted it.
    redis.call('DEL', key)
  else
    call_chunked('HSET', key, nil, rows, 1, #rows, 2)
    if #rows > 0 or redis.call('EXISTS', key) == 1 then
      redis.call('PEXPIREAT', key, hash.expiry)  -- every row of a details hash has its day's expiry
    end
    call_chunked('HDEL', key, nil, deleted, 1, #deleted, 1)  -- last: it may delete the hash
  end
end
local days = {}  -- day, number, day, number, ...: the day buckets written, for the day log
local minutes = {}  -- number, minute, number, minute, ...: the minute buckets, for the minute log
for _, index in ipairs(order) do
  local key, fields = KEYS[index], sums[index]
  for _, name in ipairs(fields.names) do redis.call('HINCRBY', key, name, fields.amounts[name]) end
  redis.call('PEXPIREAT', key, expiry[index])
  local day_at = string.find(key, '}:d:', 1, true)  -- a day bucket: `<tag>:d:<day>`
  if day_at then
    days[#days + 1] = string.sub(key, day_at + 4)
    days[#days + 1] = 0  -- the number, set below
  else
    local minute_at = string.find(key, '}:m:', 1, true)  -- a minute bucket: `<tag>:m:<minute>`
    if minute_at then
      minutes[#minutes + 1] = 0  -- the number, set below
      minutes[#minutes + 1] = string.sub(key, minute_at + 4)
    end
  end
end
if #days > 0 or #minutes > 0 then
  local day_number = redis.call('HINCRBY', day_log, '#', 1)
  redis.call('HINCRBY', day_log, 'm#', 1)
  -- A log that expired starts again at 1: its birth tells the two apart. The first share of this
  -- call, and the time: a rebuild replays the same first share into a log with smaller numbers,
  -- which a leader that held the old ones must not compare with them (touch_index.lua alike).
  if day_number == 1 then
    local now = redis.call('TIME')
    redis.call('HSET', day_log, '@', day_share[1] .. ':' .. day_share[2] .. ':' .. now[1] .. '.' .. now[2])
    redis.call('DEL', minute_log)  -- its numbers belong to the log that expired
  end
  local newest = false
  for i = 2, #days, 2 do
    days[i] = day_number
    local day = tonumber(days[i - 1])
    if newest == false or day > newest then newest = day end
  end
  call_chunked('HSET', day_log, nil, days, 1, #days, 2)
  if newest and day_number % DAY_LOG_PRUNE_EVERY == 0 then
    -- A day let go lowers no number the leader compares: numbers only grow, a token never repeats.
    local gone = {}
    for _, name in ipairs(redis.call('HKEYS', day_log)) do
      local day = tonumber(name)  -- nil for '#', '@', 'm#', 'm<'
      if day and day < newest - DAY_LOG_DAYS then gone[#gone + 1] = name end
    end
    call_chunked('HDEL', day_log, nil, gone, 1, #gone, 1)
  end
  redis.call('PEXPIRE', day_log, marker_ttl)
  if #minutes > 0 then
    for i = 1, #minutes, 2 do minutes[i] = day_number end
    call_chunked('ZADD', minute_log, nil, minutes, 1, #minutes, 2)
    local over = redis.call('ZCARD', minute_log) - MINUTE_LOG_SIZE
    if over > 0 then
      local gone = redis.call('ZPOPMIN', minute_log, over)
      redis.call('HSET', day_log, 'm<', gone[#gone])  -- the highest number let go
    end
    redis.call('PEXPIRE', minute_log, marker_ttl)
  end
end
for _, partition in ipairs(mark_order) do redis.call('HSET', KEYS[1], partition, marks[partition]) end
redis.call('PEXPIRE', KEYS[1], marker_ttl)
return applied
