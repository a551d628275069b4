-- Shared by every script: agents/store/scripts.py puts `local CHUNK = <n>` and this file in
-- front of each one (error messages give the script's own line numbers back).
--
-- Redis keeps whatever a script wrote before it failed. So every writing script checks all
-- of its input first (check_*: a failure replies BADINPUT and has written nothing), and no
-- call may fail on size: unpack() puts every value on Lua's C stack, which holds ~8,000,
-- so variadic commands go through call_chunked, CHUNK values at a time.

-- A second bucket's field, `<name>:<second>`: the name is everything before the last `:`
-- (`.+` is greedy), whatever it holds (`w0`..`w3` hold digits).
local SECOND_FIELD = '^(.+):(%d+)$'

local function check(ok, what)
  if not ok then error({err = 'BADINPUT ' .. what}) end
end

local function is_integer(value)
  return type(value) == 'number' and value == math.floor(value)
end

-- An argument (ARGV are strings) that reads as an integer.
local function check_integer_arg(value, what)
  check(is_integer(tonumber(value)), what .. ' is not an integer: ' .. tostring(value))
end

-- Each key holds nothing yet or the type the script writes to it (a WRONGTYPE midway would
-- leave the writes before it in place).
local function check_type(key, wanted)
  local found = redis.call('TYPE', key).ok
  check(found == 'none' or found == wanted, key .. ' is a ' .. found .. ', not a ' .. wanted)
end

-- `command key [flag] list[first..last]`, at most CHUNK values per call; `width` values make
-- one item (2 for score member, field value), so no item is split across two calls.
local function call_chunked(command, key, flag, list, first, last, width)
  local step = CHUNK - CHUNK % width
  for i = first, last, step do
    local j = math.min(i + step - 1, last)
    if flag then
      redis.call(command, key, flag, unpack(list, i, j))
    else
      redis.call(command, key, unpack(list, i, j))
    end
  end
end

-- A read of one key over `list` (HMGET's fields, ZMSCORE's members), CHUNK at a time: the
-- replies in order (false where absent). An empty list reads nothing.
local function read_chunked(command, key, list)
  local values = {}
  for i = 1, #list, CHUNK do
    for _, value in ipairs(redis.call(command, key, unpack(list, i, math.min(i + CHUNK - 1, #list)))) do
      values[#values + 1] = value
    end
  end
  return values
end

-- A command over many keys that answers a count (EXISTS), CHUNK keys a call: the counts summed.
local function count_chunked(command, keys)
  local total = 0
  for i = 1, #keys, CHUNK do
    total = total + redis.call(command, unpack(keys, i, math.min(i + CHUNK - 1, #keys)))
  end
  return total
end

local function hmget_chunked(key, fields)
  return read_chunked('HMGET', key, fields)
end

-- The cohort buckets (window_sums.lua, floor_reads.lua): `<agent tag>:<kind>:<ident>`.
local function bucket_key(tag, kind, ident)
  return tag .. ':' .. kind .. ':' .. string.format('%d', ident)
end

-- Where a bucket field adds in a window vector (`index`: field name -> 1..width), or nil; and,
-- for a second bucket's field, its second. Seconds outside lo..hi do not count (lo < 0: the
-- bucket holds whole fields, no seconds).
local function bucket_slot(field, index, lo, hi)
  if lo < 0 then return index[field], nil end
  local name, sec = string.match(field, SECOND_FIELD)
  sec = tonumber(sec)
  if name and sec >= lo and sec <= hi then return index[name], sec end
  return nil, nil
end

-- Where window w's vector starts in a windows * width flat vector (0-based), for each window in
-- `mask` (bit w = window w): computed once per bucket or run, not once per field. Every reader
-- then adds a value at `offsets[k] + slot` for each k, in a loop of its own: a Lua function
-- call per value cost floor_reads.lua ~25 ns a value, ~18 us an agent read whole.
local function window_offsets(mask, windows, width)
  local offsets = {}
  for w = 0, windows - 1 do
    if bit.band(mask, bit.lshift(1, w)) ~= 0 then offsets[#offsets + 1] = w * width end
  end
  return offsets
end

-- Add a whole-field bucket's values, read by HMGET of the field names in slot order (false:
-- absent), into `into` at each of `offsets`. HMGET rather than HGETALL: Redis makes a Lua string
-- of every reply item, and a day bucket's names and its fields no window reads cost twice the
-- values (~20 us a touched agent).
local function add_values(values, into, offsets)
  for slot = 1, #values do
    local value = values[slot]
    if value then
      value = tonumber(value)
      for k = 1, #offsets do
        local at = offsets[k] + slot
        into[at] = into[at] + value
      end
    end
  end
end

-- A shop's agents index's change log (touch_index.lua writes it, floor_changes.lua reads it),
-- in the index's slot by its tag: a counter bumped at every touch, and each member's last
-- touch's count.
local function change_keys(index_key)
  check(string.find(index_key, '{', 1, true) ~= nil, index_key .. ' has no hash tag for its change log')
  return index_key .. ':chg', index_key .. ':ver'
end
