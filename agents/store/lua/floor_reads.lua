-- Everything the leader's round reads of a few agents, in one call and one packed reply per
-- agent: its window sums (as window_sums.lua), its waits (count, oldest), its first-response
-- histogram, its status change points, and until when all of that stays as read while nothing
-- is written.
-- KEYS[i]: agent i's outbox markers (`kp:{A}:a`). The other keys are the agent's own, named
-- here from the same tag (`kp:{A}` + suffix), so all are in the slot KEYS[i] names: sending 90
-- key names per agent per second cost the leader more than Redis's reads of them. On a cluster
-- a call reads one agent (one slot); on one server, several: the plan is unpacked once, and the
-- round sends and parses a call per several agents, not per agent.
-- ARGV[1]: the plan, msgpack {windows, width, {field names}, oldest_allowed_ms,
--   {{kind, first, last, mask, lo, hi, closed}, ...}, now_s, {rolling seconds per window},
--   status_since_ms ('' for none), prune (1: drop waits older than oldest_allowed_ms), {the
--   closed runs' days as field names}, the last minute to look for cohorts stamped ahead of
--   now in}, the same for every agent of the call: each run reads
--   buckets `kind` first..last alike. `closed` reads are business days before today: they add
--   into a vector of their own, not the windows.
-- Then four arguments per agent, in KEYS' order (ARGV[4i-2] .. ARGV[4i+1]):
-- - the closed days' token the caller holds their sum for ('' for none). With a day log
--   (apply_agent.lua notes each day a share writes, with a number that only grows), it is the
--   highest number among the closed days: unchanged, their buckets are unchanged. Without one
--   it is every marker (partition and position): apply_agent.lua sets one in the same script
--   as every counter it writes, and positions only grow. Either way the closed reads are
--   skipped.
-- - the minute token the caller holds the whole minutes of ('' for none), and the first and
--   last minute it holds ('' for none). The whole minutes of the rolling windows (the plan's
--   `m` runs) are not summed here: each minute read comes back as its own vector, and the
--   caller keeps them and sums the windows (agents/exposure/floor.py). With a minute log
--   (apply_agent.lua: each minute written, scored by its day-log number) whose token is still
--   the caller's, only the minutes written since and those outside what it holds are read;
--   else all of them ("whole").
-- Returns one msgpack string per agent, in KEYS' order: {token, closed (width numbers, or {}
-- when skipped), sums (windows * width, without the `m` runs), waiting buyers, oldest wait's
-- score (string, or false), its member (or false), {histogram field, count, ...},
-- valid_until_s (or false), {status member, score, ...}, closed days' token, {{minute, slot,
-- value, ...}, ...} (a minute read, its non-zero counters; a minute alone: none left), minute
-- token ('' without a minute log), whole (1, or 0)}.
-- valid_until_s: the first second at which a rolling window's sums differ from these without a
-- write (a cohort second leaves a window, or a future one enters it), but for the `m` runs: the
-- caller knows those from the minutes it keeps; or at which the histogram or the status points
-- expire (their TTLs slide only with their own writes, so they can expire untouched: a fresh
-- read then has none, and the caller must not keep them past that second).
local plan = cmsgpack.unpack(ARGV[1])
local windows, width, names, oldest_allowed, reads = plan[1], plan[2], plan[3], plan[4], plan[5]
local now_s, rolling, status_since, prune, closed_days = plan[6], plan[7], plan[8], plan[9], plan[10]
local ahead_until = plan[11] or math.floor(now_s / 60) + 1
local index = {}
for i = 1, width do index[names[i]] = i end

local function read_agent(markers_key, held_closed, held_token, held_first_arg, held_last_arg)
  local tag = string.sub(markers_key, 1, -3)

  local markers = redis.call('HGETALL', markers_key)
  local pairs_ = {}
  for j = 1, #markers, 2 do pairs_[#pairs_ + 1] = markers[j] .. '=' .. markers[j + 1] end
  table.sort(pairs_)
  local token = table.concat(pairs_, ',')
  -- The closed days' token: the highest day-log number among them (apply_agent.lua), so writes to
  -- today alone keep them; without a day log (older writers), every marker.
  local closed_token = token
  local day_log = tag .. ':dv'
  local logged = redis.call('HMGET', day_log, '#', '@', 'm#', 'm<')
  if logged[1] then
    -- One HMGET for the closed days (27 HGETs were a quarter of a touched agent's calls), named
    -- by the plan: formatting 27 numbers here cost a touched agent ~7 us.
    local highest = 0
    for _, n in ipairs(hmget_chunked(day_log, closed_days)) do
      n = tonumber(n or '0')
      if n > highest then highest = n end
    end
    closed_token = 'd' .. highest .. '@' .. tostring(logged[2])
  end
  local skip_closed = token ~= '' and closed_token == held_closed

  -- The minute log's token: its number now, and what must stand still for the numbers to compare:
  -- the calls that did not keep the log ('#' - 'm#', older writers) and the log's birth.
  local minute_token, since = '', false
  if logged[1] and logged[3] then
    local shape = (tonumber(logged[1]) - tonumber(logged[3])) .. '@' .. tostring(logged[2])
    minute_token = logged[1] .. ':' .. shape
    local colon = string.find(held_token, ':', 1, true)
    local held = colon and tonumber(string.sub(held_token, 1, colon - 1))
    local held_shape = colon and string.sub(held_token, colon + 1)
    local number, let_go = tonumber(logged[1]), tonumber(logged[4] or '0')
    if held and held_shape == shape and held_first_arg ~= '' and held >= let_go and held <= number then
      since = held
    end
  end
  local held_first, held_last = tonumber(held_first_arg), tonumber(held_last_arg)
  local written = {}  -- minutes written since the held token
  if since then
    for _, minute in ipairs(redis.call('ZRANGEBYSCORE', tag .. ':mv', '(' .. since, '+inf')) do
      written[tonumber(minute)] = true
    end
  end
  local minute_rows = {}

  local valid_until = false
  local function until_(second)
    if valid_until == false or second < valid_until then valid_until = second end
  end

  local now_minute, now_minute_read = math.floor(now_s / 60), false
  local sums, closed = {}, {}
  for i = 1, windows * width do sums[i] = 0 end
  for i = 1, width do closed[i] = 0 end
  -- A whole minute of the rolling windows, as its own vector: slot, value, ... of the non-zero.
  -- A minute without counters is left out (the caller has none for it), unless it was written
  -- since the held token: then the caller's counters for it must go.
  local function read_minute(ident)
    local row = {ident}
    local flat = redis.call('HGETALL', bucket_key(tag, 'm', ident))
    for j = 1, #flat, 2 do
      local slot, value = index[flat[j]], tonumber(flat[j + 1])
      if slot and value ~= 0 then
        row[#row + 1] = slot
        row[#row + 1] = value
      end
    end
    if #row > 1 or written[ident] then minute_rows[#minute_rows + 1] = row end
  end

  for _, run in ipairs(reads) do
    local kind, mask, lo, hi, is_closed = run[1], run[4], run[5], run[6], run[7] == 1
    if kind == 'm' then
      for ident = run[2], run[3] do
        if not since or written[ident] or ident < held_first or ident > held_last then read_minute(ident) end
      end
    elseif lo < 0 then  -- whole fields: days, which no rolling window reads
      local into, offsets = sums, window_offsets(mask, windows, width)
      if is_closed then into, offsets = closed, {0} end
      for ident = run[2], (is_closed and skip_closed) and run[2] - 1 or run[3] do
        add_values(hmget_chunked(bucket_key(tag, kind, ident), names), into, offsets)
      end
    else  -- second buckets: seconds lo..hi count, and the earliest cohort sets when they leave
      local offsets, leaving = window_offsets(mask, windows, width), {}
      for w = 0, windows - 1 do
        if rolling[w + 1] > 0 and bit.band(mask, bit.lshift(1, w)) ~= 0 then
          leaving[#leaving + 1] = rolling[w + 1]
        end
      end
      for ident = run[2], run[3] do
        local flat = redis.call('HGETALL', bucket_key(tag, kind, ident))
        local earliest = false
        local is_now = ident == now_minute
        if is_now then now_minute_read = true end
        for j = 1, #flat, 2 do
          -- As bucket_slot, inline: this minute's fields past now are noted as they pass.
          local name, sec = string.match(flat[j], SECOND_FIELD)
          sec = tonumber(sec)
          local slot = sec and sec >= lo and sec <= hi and index[name]
          if slot then
            local value = tonumber(flat[j + 1])
            -- As add_values, inline: a function call per value is slower (window_offsets' note).
            for k = 1, #offsets do
              local at = offsets[k] + slot
              sums[at] = sums[at] + value
            end
            if value ~= 0 and (earliest == false or sec < earliest) then earliest = sec end
          end
          if is_now and sec and ident * 60 + sec > now_s then until_(ident * 60 + sec) end
        end
        if earliest ~= false then
          for _, seconds in ipairs(leaving) do until_(ident * 60 + earliest + seconds) end
        end
      end
    end
  end
  if skip_closed then closed = {} end
  -- Cohorts stamped after now (a writer's clock ahead, as far as the decoder lets through): they
  -- enter the windows when now reaches them. This minute's second bucket was read above when a
  -- window ends in it (almost always).
  -- The minutes past the next are asked first whether they hold anything (one EXISTS: they
  -- almost never do, and an HGETALL each cost ~6 us an agent).
  local last_read = now_minute + 1
  if ahead_until > last_read then
    local further = {}
    for minute = last_read + 1, ahead_until do further[#further + 1] = bucket_key(tag, 's', minute) end
    if count_chunked('EXISTS', further) > 0 then last_read = ahead_until end
  end
  for minute = now_minute_read and now_minute + 1 or now_minute, last_read do
    local flat = redis.call('HGETALL', bucket_key(tag, 's', minute))
    for j = 1, #flat, 2 do
      local _, sec = string.match(flat[j], SECOND_FIELD)
      local at = minute * 60 + tonumber(sec)
      if at > now_s then until_(at) end
    end
  end

  local waiting = tag .. ':w'
  if prune == 1 then redis.call('ZREMRANGEBYSCORE', waiting, '-inf', '(' .. oldest_allowed) end
  local count = redis.call('ZCOUNT', waiting, oldest_allowed, '+inf')
  local oldest = redis.call('ZRANGEBYSCORE', waiting, oldest_allowed, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local histogram = redis.call('HGETALL', tag .. ':h')
  local function until_expired(key)
    local ttl = redis.call('PTTL', key)
    if ttl >= 0 then until_(now_s + math.floor(ttl / 1000)) end
  end
  if #histogram > 0 then until_expired(tag .. ':h') end
  local points = {}
  if status_since ~= '' then
    -- As status_store.status_points: the newest point before `since`, then every one from it on.
    local key = tag .. ':st'
    local before = redis.call(
      'ZREVRANGEBYSCORE', key, '(' .. status_since, '-inf', 'WITHSCORES', 'LIMIT', 0, 1
    )
    local after = redis.call('ZRANGEBYSCORE', key, status_since, '+inf', 'WITHSCORES')
    for _, m in ipairs(before) do points[#points + 1] = m end
    for _, m in ipairs(after) do points[#points + 1] = m end
    if #points > 0 then until_expired(key) end
  end
  return cmsgpack.pack({
    token, closed, sums, count, oldest[2] or false, oldest[1] or false, histogram, valid_until, points,
    closed_token, minute_rows, minute_token, since and 0 or 1
  })
end

local replies = {}
for i, key in ipairs(KEYS) do
  local at = 4 * i - 2
  replies[i] = read_agent(key, ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3])
end
return replies
