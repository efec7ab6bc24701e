#!lua name=glidemq___V__
-- All queue logic of glidemq. Every function takes one key: the queue's key base
-- "<prefix>:{<queue>}:". Every other key of the queue is derived from it, so all of a
-- queue's keys share one hash tag (one cluster slot). Times are server times in ms.

local EVENTS_MAXLEN = 10000
local PRIO_SHIFT = 2147483648      -- 2^31: priority * 2^31 + sequence stays below 2^53
local DELAY_SHIFT = 4096           -- delayed score: due_ms * 4096 + sequence
local STALLED_REASON = 'job stalled more than allowable limit'
local JOB_FIELDS = {'n', 'd', 'ts', 'at', 'am', 'p', 'dl', 'bo', 'to', 'pg', 'rc', 'rf'}
-- Fields left at their default are not stored (every argument of a command costs the
-- server an allocation); readers fill the defaults in.
local JOB_DEFAULTS = {'', '', '0', '1', '0', '0', '0', '', '0', '', '-1', '-1'}
-- fetched on activation: the job fields, then its trace context (returned apart, see `take`)
local ACTIVATION_FIELDS = {'n', 'd', 'ts', 'at', 'am', 'p', 'dl', 'bo', 'to', 'pg', 'rc', 'rf', 'tc'}
local OPTIONAL_FIELDS = {{'dl', 4, '0'}, {'p', 5, '0'}, {'bo', 7, ''}, {'to', 8, '0'}, {'lf', 9, '0'},
  {'rc', 10, '-1'}, {'rf', 11, '-1'}}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Events are buffered during a call and written when it ends, one stream entry per event
-- name: e <name> id <job id> [field value ...] id <job id> [...] ...
local pending = {base = '', order = {}, lists = {}}

local function begin_events(base)
  pending = {base = base, order = {}, lists = {}}
end

local function emit(base, event, id, ...)
  local list = pending.lists[event]
  if not list then
    list = {}
    pending.lists[event] = list
    pending.order[#pending.order + 1] = event
  end
  list[#list + 1] = 'id'
  list[#list + 1] = id
  local n = select('#', ...)
  if n > 0 then
    local extra = {...}
    for i = 1, n do list[#list + 1] = extra[i] end
  end
end

local function flush_events()
  local key = pending.base .. 'events'
  for _, event in ipairs(pending.order) do
    redis.call('XADD', key, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', event, unpack(pending.lists[event]))
  end
  pending = {base = '', order = {}, lists = {}}
end

-- Operations: jobs finished for good during one call, added to the queue's 'metrics' hash
-- once per call (never per job); the metrics exporter reads these totals.
local tally = {completed = 0, failed = 0}

local function count_finished(kind)
  tally[kind] = tally[kind] + 1
end

local function flush_tally(base)
  if tally.completed > 0 then redis.call('HINCRBY', base .. 'metrics', 'completed', tally.completed) end
  if tally.failed > 0 then redis.call('HINCRBY', base .. 'metrics', 'failed', tally.failed) end
  tally = {completed = 0, failed = 0}
end

local function wake(base)
  redis.call('ZADD', base .. 'marker', 0, 'w')
end

local function seq(base)
  return redis.call('INCR', base .. 'seq')
end

-- Active jobs are members "<id>:<token>" of the active set: removing that exact member is
-- what ends an activation, so a worker holding an old token is fenced off.
local function lease(id, token)
  return id .. ':' .. token
end

local function lease_id(member)
  return string.match(member, '^(.*):[^:]*$')
end

local function enqueue(base, id, prio, front)
  if prio > 0 then
    local score = prio * PRIO_SHIFT + (seq(base) % PRIO_SHIFT)
    redis.call('ZADD', base .. 'prio', score, id)
  elseif front then
    redis.call('LPUSH', base .. 'wait', id)
  else
    redis.call('RPUSH', base .. 'wait', id)
  end
end

local function schedule(base, id, due)
  redis.call('ZADD', base .. 'delayed', due * DELAY_SHIFT + (seq(base) % DELAY_SHIFT), id)
end

local function delete_job(base, id)
  redis.call('DEL', base .. 'j:' .. id, base .. 'l:' .. id)
end

-- Keep only the `keep` newest members of a finished set (keep < 0: keep all).
local function retain(base, set, keep)
  if keep < 0 then return end
  local extra = redis.call('ZCARD', base .. set) - keep
  if extra <= 0 then return end
  local old = redis.call('ZRANGE', base .. set, 0, extra - 1)
  for _, oid in ipairs(old) do delete_job(base, oid) end
  redis.call('ZREMRANGEBYRANK', base .. set, 0, extra - 1)
end

-- Finished jobs kept without a limit are added to their set in one ZADD when the call ends.
local finished_sets = {}

local function flush_finished(base)
  for set, members in pairs(finished_sets) do
    redis.call('ZADD', base .. set, unpack(members))
  end
  finished_sets = {}
end

local function finish(base, id, set, keep, now_s, fields)
  if keep == 0 then
    delete_job(base, id)
    return
  end
  redis.call('HSET', base .. 'j:' .. id, unpack(fields))
  if keep < 0 then
    local members = finished_sets[set]
    if not members then
      members = {}
      finished_sets[set] = members
    end
    members[#members + 1] = now_s
    members[#members + 1] = id
    return
  end
  redis.call('ZADD', base .. set, now_s, id)
  retain(base, set, keep)
end

local function fail_for_good(base, id, am, reason, stack, keep, now_s)
  count_finished('failed')
  emit(base, 'failed', id, 'failed_reason', reason, 'attempts_made', am)
  finish(base, id, 'failed', keep, now_s, {'s', 'failed', 'fo', now_s, 'am', am, 'fr', reason, 'st', stack})
end

-- Puts a job back to waiting (front) or delayed without using an attempt.
local function release(base, id, prio, delay, now)
  local jk = base .. 'j:' .. id
  if delay > 0 then
    redis.call('HSET', jk, 's', 'delayed')
    schedule(base, id, now + delay)
    emit(base, 'delayed', id, 'delay', now + delay)
  else
    redis.call('HSET', jk, 's', 'waiting')
    enqueue(base, id, prio, true)
    emit(base, 'waiting', id)
  end
  wake(base)
end

-- Finishes one activation. f = {id, token, kind, payload, extra, retry, attempts_made,
-- keep, priority}; kind c(omplete): payload = return value; f(ail): payload = reason,
-- extra = stack, retry = delay ms or -1 for a final failure; r(elease): retry = delay ms.
-- attempts_made and keep (remove_on_complete/fail) come from the worker holding the lease.
-- Returns status (0 stale, 1 completed, 2 failed, 3 retrying, 4 released).
local function finish_one(base, f, now, now_s)
  local id = f[1]
  if redis.call('ZREM', base .. 'active', lease(id, f[2])) == 0 then return 0 end
  local kind, am = f[3], f[7]
  if kind == 'c' then
    count_finished('completed')
    emit(base, 'completed', id, 'return_value', f[4])
    finish(base, id, 'completed', f[8], now_s, {'s', 'completed', 'fo', now_s, 'am', am, 'rv', f[4]})
    return 1
  elseif kind == 'r' then
    release(base, id, f[9], f[6], now)
    return 4
  end
  local delay = f[6]
  if delay < 0 then
    fail_for_good(base, id, am, f[4], f[5], f[8], now_s)
    return 2
  end
  redis.call('HSET', base .. 'j:' .. id, 'am', am, 'fr', f[4], 'st', f[5])
  release(base, id, f[9], delay, now)
  return 3
end

local function promote_due(base, now)
  local key = base .. 'delayed'
  local due = redis.call('ZRANGEBYSCORE', key, 0, now * DELAY_SHIFT + DELAY_SHIFT - 1, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    local jk = base .. 'j:' .. id
    local f = redis.call('HMGET', jk, 'p', 'lf')
    redis.call('HSET', jk, 's', 'waiting')
    enqueue(base, id, tonumber(f[1] or '0'), f[2] == '1')
  end
  if #due > 0 then redis.call('ZREM', key, unpack(due)) end
end

-- ms until the first delayed job is due (-1: none); promotes due jobs first.
local function next_delay(base, now)
  for _ = 1, 2 do
    local first = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
    if #first == 0 then return -1 end
    local due = math.floor(tonumber(first[2]) / DELAY_SHIFT)
    if due > now then return due - now end
    promote_due(base, now)
  end
  return 0
end

local function waiting_count(base)
  return redis.call('LLEN', base .. 'wait') + redis.call('ZCARD', base .. 'prio')
end

-- Activates up to `want` jobs; returns a flat array of job records and a flat array of
-- [id, trace context] of the activated jobs that carry one.
local function activate(base, want, lock_ms, now, now_s)
  local out, traces = {}, {}
  if want <= 0 or redis.call('HGET', base .. 'meta', 'paused') == '1' then return out, traces end
  local ids = redis.call('LPOP', base .. 'wait', want) or {}
  if #ids < want then
    local popped = redis.call('ZPOPMIN', base .. 'prio', want - #ids)
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  end
  if #ids == 0 then return out, traces end
  -- Sequence and server time: a token never repeats, even after a restart that lost the
  -- data (and the sequence), so a worker from before cannot finish a job that reuses an id.
  local token = seq(base) .. '-' .. now
  local deadline = tostring(now + lock_ms)
  local scores = {}
  for i, id in ipairs(ids) do
    local jk = base .. 'j:' .. id
    redis.call('HSET', jk, 's', 'active', 'po', now_s)
    local f = redis.call('HMGET', jk, unpack(ACTIVATION_FIELDS))
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = now_s
    for k = 1, #JOB_FIELDS do out[#out + 1] = f[k] or JOB_DEFAULTS[k] end
    if f[#ACTIVATION_FIELDS] then
      traces[#traces + 1] = id
      traces[#traces + 1] = f[#ACTIVATION_FIELDS]
    end
    scores[#scores + 1] = deadline
    scores[#scores + 1] = lease(id, token)
    emit(base, 'active', id)
  end
  redis.call('ZADD', base .. 'active', unpack(scores))
  if #ids == want and waiting_count(base) > 0 then
    wake(base)
  else
    emit(base, 'drained', '')
  end
  return out, traces
end

-- take(lock_ms, want, finished): finishes a batch of jobs and activates the next ones in
-- one call. `finished` is a msgpack array of {id, token, kind, payload, extra, retry} ('' for none).
-- Returns {now, next_delay_ms, {status} * n, msgpack job records ('' for none)}, followed by
-- [id, trace context] * m when activated jobs carry trace contexts.
local function take(keys, args)
  local base = keys[1]
  local lock_ms, want = tonumber(args[1]), tonumber(args[2])
  local now = now_ms()
  local now_s = tostring(now)
  local results = {}
  if args[3] ~= '' then
    for i, f in ipairs(cmsgpack.unpack(args[3])) do
      results[i] = finish_one(base, f, now, now_s)
    end
  end
  local delay = next_delay(base, now)
  local jobs, traces = activate(base, want, lock_ms, now, now_s)
  local packed = ''
  if #jobs > 0 then packed = cmsgpack.pack(jobs) end
  if delay == 0 then delay = next_delay(base, now) end
  if #traces > 0 then return {now, delay, results, packed, traces} end
  return {now, delay, results, packed}
end

-- add(jobs[, traces]): `jobs` is a msgpack array of {id, name, data, delay_ms, priority, attempts,
-- backoff, timeout_ms, lifo, rc, rf}, numbers as decimal strings (Lua turns numbers
-- into strings slowly, so the client does it). Returns {now, [id, created] * n}; an existing custom id
-- is left untouched (created = 0). `traces` (optional): a msgpack array of each job's trace
-- context ('' for none), stored as field 'tc'.
local function add(keys, args)
  local base = keys[1]
  local now = now_ms()
  local now_s = tostring(now)
  local out = {now}
  local woke = false
  local traces = false
  if args[2] then traces = cmsgpack.unpack(args[2]) end
  for i, j in ipairs(cmsgpack.unpack(args[1])) do
    local id = j[1]
    local created = 0
    if id == '' then
      id = tostring(redis.call('INCR', base .. 'id'))
    end
    local jk = base .. 'j:' .. id
    if redis.call('EXISTS', jk) == 0 then
      created = 1
      local delay, prio, lifo = tonumber(j[4]), tonumber(j[5]), j[9]
      local state = 'waiting'
      if delay > 0 then state = 'delayed' end
      local fields = {'n', j[2], 'd', j[3], 'ts', now_s, 'at', j[6], 's', state}
      for _, opt in ipairs(OPTIONAL_FIELDS) do
        local value = j[opt[2]]
        if value ~= opt[3] then
          fields[#fields + 1] = opt[1]
          fields[#fields + 1] = value
        end
      end
      if traces and traces[i] ~= '' then
        fields[#fields + 1] = 'tc'
        fields[#fields + 1] = traces[i]
      end
      redis.call('HSET', jk, unpack(fields))
      emit(base, 'added', id, 'name', j[2])
      if delay > 0 then
        schedule(base, id, now + delay)
        emit(base, 'delayed', id, 'delay', now + delay)
      else
        enqueue(base, id, prio, lifo == '1')
      end
      woke = true
    end
    out[#out + 1] = id
    out[#out + 1] = created
  end
  if woke then wake(base) end
  return out
end

-- extend(lock_ms, lease...): renews the leases ("<id>:<token>") still held; returns how many.
local function extend(keys, args)
  local base = keys[1]
  local deadline = now_ms() + tonumber(args[1])
  local pairs_ = {}
  for i = 2, #args do
    pairs_[#pairs_ + 1] = deadline
    pairs_[#pairs_ + 1] = args[i]
  end
  if #pairs_ == 0 then return 0 end
  return redis.call('ZADD', base .. 'active', 'XX', 'CH', unpack(pairs_))
end

-- stalled(max_stalled, limit): recovers jobs whose lease ran out.
-- Returns {recovered ids, failed ids}.
local function stalled(keys, args)
  local base = keys[1]
  local max_stalled, limit = tonumber(args[1]), tonumber(args[2])
  local now = now_ms()
  local members = redis.call('ZRANGEBYSCORE', base .. 'active', '-inf', now, 'LIMIT', 0, limit)
  local recovered, failed = {}, {}
  for _, member in ipairs(members) do
    redis.call('ZREM', base .. 'active', member)
    local id = lease_id(member)
    local jk = base .. 'j:' .. id
    if redis.call('EXISTS', jk) == 1 then
      local count = redis.call('HINCRBY', jk, 'sc', 1)
      emit(base, 'stalled', id)
      local f = redis.call('HMGET', jk, 'am', 'p', 'rf')
      if count > max_stalled then
        local am = tostring(tonumber(f[1] or '0') + 1)
        fail_for_good(base, id, am, STALLED_REASON, '', tonumber(f[3] or '-1'), tostring(now))
        failed[#failed + 1] = id
      else
        redis.call('HSET', jk, 's', 'waiting')
        enqueue(base, id, tonumber(f[2] or '0'), true)
        recovered[#recovered + 1] = id
      end
    end
  end
  if #recovered > 0 then wake(base) end
  return {recovered, failed}
end

local function counts(keys, args)
  local base = keys[1]
  return {
    waiting_count(base),
    redis.call('ZCARD', base .. 'active'),
    redis.call('ZCARD', base .. 'delayed'),
    redis.call('ZCARD', base .. 'completed'),
    redis.call('ZCARD', base .. 'failed'),
    redis.call('HGET', base .. 'meta', 'paused') == '1' and 1 or 0,
  }
end

local function set_paused(keys, args)
  local base = keys[1]
  if args[1] == '1' then
    redis.call('HSET', base .. 'meta', 'paused', '1')
    emit(base, 'paused', '')
  else
    redis.call('HDEL', base .. 'meta', 'paused')
    emit(base, 'resumed', '')
    wake(base)
  end
  return 1
end

-- Ids of one state between ranks start and stop (inclusive; stop -1 = last).
-- Waiting is the wait list (run order) followed by prioritized jobs.
local function ids_in(base, state, start, stop)
  if state == 'waiting' then
    local len = redis.call('LLEN', base .. 'wait')
    local total = len + redis.call('ZCARD', base .. 'prio')
    if stop < 0 then stop = total + stop end
    if start < 0 then start = math.max(total + start, 0) end
    local out = {}
    if start > stop then return out end
    if start < len then
      out = redis.call('LRANGE', base .. 'wait', start, math.min(stop, len - 1))
    end
    if stop >= len then
      local p = redis.call('ZRANGE', base .. 'prio', math.max(start - len, 0), stop - len)
      for _, id in ipairs(p) do out[#out + 1] = id end
    end
    return out
  elseif state == 'completed' or state == 'failed' then
    return redis.call('ZRANGE', base .. state, start, stop, 'REV')
  elseif state == 'active' then
    local out = redis.call('ZRANGE', base .. 'active', start, stop)
    for i, member in ipairs(out) do out[i] = lease_id(member) end
    return out
  end
  return redis.call('ZRANGE', base .. state, start, stop)
end

local function get_ids(keys, args)
  return ids_in(keys[1], args[1], tonumber(args[2]), tonumber(args[3]))
end

-- jobs(id...): the full hash of each job (empty array for a missing job).
local function jobs(keys, args)
  local base = keys[1]
  local out = {}
  for i, id in ipairs(args) do out[i] = redis.call('HGETALL', base .. 'j:' .. id) end
  return out
end

local function state_of(keys, args)
  return redis.call('HGET', keys[1] .. 'j:' .. args[1], 's') or 'unknown'
end

-- Takes a job that is not active out of the structure of its state.
local function unlink(base, id, state)
  if state == 'waiting' then
    if redis.call('LREM', base .. 'wait', 1, id) == 0 then redis.call('ZREM', base .. 'prio', id) end
  elseif state == 'delayed' or state == 'completed' or state == 'failed' then
    redis.call('ZREM', base .. state, id)
  end
end

-- remove(id): 1 removed, 0 unknown, -1 active (refused).
local function remove(keys, args)
  local base = keys[1]
  local id = args[1]
  local state = redis.call('HGET', base .. 'j:' .. id, 's')
  if not state then return 0 end
  if state == 'active' then return -1 end
  unlink(base, id, state)
  delete_job(base, id)
  emit(base, 'removed', id, 'prev', state)
  return 1
end

-- drain(with_delayed, limit): removes up to limit waiting (and delayed) jobs; returns the count.
local function drain(keys, args)
  local base = keys[1]
  local limit = tonumber(args[2])
  local ids = redis.call('LPOP', base .. 'wait', limit) or {}
  if #ids < limit then
    local p = redis.call('ZPOPMIN', base .. 'prio', limit - #ids)
    for i = 1, #p, 2 do ids[#ids + 1] = p[i] end
  end
  if args[1] == '1' and #ids < limit then
    local d = redis.call('ZPOPMIN', base .. 'delayed', limit - #ids)
    for i = 1, #d, 2 do ids[#ids + 1] = d[i] end
  end
  for _, id in ipairs(ids) do delete_job(base, id) end
  if #ids < limit then emit(base, 'drained', '') end
  return #ids
end

-- clean(state, cutoff_ms, limit, cursor): scans up to 500 ids from rank `cursor`
-- and removes those finished (or created, for waiting/delayed) before cutoff.
-- Returns {next_cursor (-1 when done), removed ids...}.
local function clean(keys, args)
  local base = keys[1]
  local state, cutoff, limit, cursor = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  local window = math.min(limit, 500)
  local finished = state == 'completed' or state == 'failed'
  local ids
  if finished then
    ids = redis.call('ZRANGE', base .. state, cursor, cursor + window - 1)
  else
    ids = ids_in(base, state, cursor, cursor + window - 1)
  end
  local out = {-1}
  local kept = 0
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', base .. 'j:' .. id, 'ts', 'fo')
    local t = tonumber(f[1]) or 0
    if finished then t = tonumber(f[2]) or 0 end
    if t < cutoff and #out - 1 < limit then
      unlink(base, id, state)
      delete_job(base, id)
      emit(base, 'removed', id, 'prev', state)
      out[#out + 1] = id
    else
      kept = kept + 1
    end
  end
  if #ids == window and #out - 1 < limit then out[1] = cursor + kept end
  return out
end

local function requeue(base, id)
  local jk = base .. 'j:' .. id
  redis.call('HSET', jk, 's', 'waiting', 'am', 0, 'sc', 0, 'fr', '', 'st', '', 'fo', '', 'rv', '')
  enqueue(base, id, tonumber(redis.call('HGET', jk, 'p') or '0'), false)
  emit(base, 'waiting', id)
end

-- retry_jobs(state, limit): moves up to limit failed/completed jobs back to waiting.
local function retry_jobs(keys, args)
  local base = keys[1]
  local popped = redis.call('ZPOPMIN', base .. args[1], tonumber(args[2]))
  for i = 1, #popped, 2 do requeue(base, popped[i]) end
  if #popped > 0 then wake(base) end
  return #popped / 2
end

-- retry(id): 1 moved, 0 unknown, -1 not failed/completed.
local function retry(keys, args)
  local base = keys[1]
  local id = args[1]
  local state = redis.call('HGET', base .. 'j:' .. id, 's')
  if not state then return 0 end
  if state ~= 'failed' and state ~= 'completed' then return -1 end
  redis.call('ZREM', base .. state, id)
  requeue(base, id)
  wake(base)
  return 1
end

-- promote(id): 1 moved, 0 unknown, -1 not delayed.
local function promote(keys, args)
  local base = keys[1]
  local id = args[1]
  local jk = base .. 'j:' .. id
  local state = redis.call('HGET', jk, 's')
  if not state then return 0 end
  if state ~= 'delayed' then return -1 end
  redis.call('ZREM', base .. 'delayed', id)
  redis.call('HSET', jk, 's', 'waiting')
  enqueue(base, id, tonumber(redis.call('HGET', jk, 'p') or '0'), false)
  emit(base, 'waiting', id)
  wake(base)
  return 1
end

-- progress(id, token, value): token '' skips the lease check. 1 stored, 0 unknown/lost.
local function progress(keys, args)
  local base = keys[1]
  local jk = base .. 'j:' .. args[1]
  if redis.call('EXISTS', jk) == 0 then return 0 end
  if args[2] ~= '' and not redis.call('ZSCORE', base .. 'active', lease(args[1], args[2])) then return 0 end
  redis.call('HSET', jk, 'pg', args[3])
  emit(base, 'progress', args[1], 'progress', args[3])
  return 1
end

local function log(keys, args)
  local base = keys[1]
  if redis.call('EXISTS', base .. 'j:' .. args[1]) == 0 then return -1 end
  return redis.call('RPUSH', base .. 'l:' .. args[1], args[2])
end

-- obliterate(force, limit): deletes up to limit jobs per call; returns the number of jobs
-- left (0: the queue is gone), or -1 when active jobs block it.
local function obliterate(keys, args)
  local base = keys[1]
  if args[1] ~= '1' and redis.call('ZCARD', base .. 'active') > 0 then return -1 end
  local budget = tonumber(args[2])
  for _, set in ipairs({'wait', 'prio', 'delayed', 'active', 'completed', 'failed'}) do
    local key = base .. set
    while budget > 0 do
      local ids
      if set == 'wait' then
        ids = redis.call('LPOP', key, math.min(budget, 1000)) or {}
      else
        ids = redis.call('ZRANGE', key, 0, math.min(budget, 1000) - 1)
        if #ids > 0 then redis.call('ZREM', key, unpack(ids)) end
      end
      if #ids == 0 then break end
      for _, id in ipairs(ids) do
        if set == 'active' then id = lease_id(id) end
        delete_job(base, id)
      end
      budget = budget - #ids
    end
  end
  local left = 0
  for _, set in ipairs({'prio', 'delayed', 'active', 'completed', 'failed'}) do
    left = left + redis.call('ZCARD', base .. set)
  end
  left = left + redis.call('LLEN', base .. 'wait')
  if left == 0 then
    redis.call('DEL', base .. 'meta', base .. 'id', base .. 'seq', base .. 'events', base .. 'marker',
      base .. 'metrics')
  end
  return left
end

-- Operations: the worker registry and the totals of the metrics exporter -----------------
-- The registry functions take the registry's key base "<prefix>:{<queue>:workers}:" (a hash
-- tag of its own, so heartbeats never write into the queue's keys), not the queue's.

-- Entries live in the 'info' hash (worker id -> info), indexed by expiry time in the 'index'
-- zset; expired entries are dropped on every heartbeat and every read, so a worker that died
-- drops out by itself. (Only commands of the runtime user's ACL: see docs/security.md.)
local function prune_workers(base, now)
  local expired = redis.call('ZRANGEBYSCORE', base .. 'index', '-inf', now, 'LIMIT', 0, 100)
  if #expired > 0 then
    redis.call('HDEL', base .. 'info', unpack(expired))
    redis.call('ZREM', base .. 'index', unpack(expired))
  end
end

-- worker_beat(id, ttl_ms, info): registers or refreshes a live worker for ttl_ms.
local function worker_beat(keys, args)
  local base = keys[1]
  local now = now_ms()
  redis.call('HSET', base .. 'info', args[1], args[3])
  redis.call('ZADD', base .. 'index', now + tonumber(args[2]), args[1])
  prune_workers(base, now)
  return 1
end

-- worker_leave(id): a worker that closes removes itself at once.
local function worker_leave(keys, args)
  local base = keys[1]
  redis.call('HDEL', base .. 'info', args[1])
  return redis.call('ZREM', base .. 'index', args[1])
end

-- workers(): the info of every live worker.
local function workers(keys, args)
  local base = keys[1]
  local now = now_ms()
  prune_workers(base, now)
  local ids = redis.call('ZRANGEBYSCORE', base .. 'index', '(' .. now, '+inf')
  local out = {}
  if #ids == 0 then return out end
  for _, info in ipairs(redis.call('HMGET', base .. 'info', unpack(ids))) do
    if info then out[#out + 1] = info end
  end
  return out
end

-- metrics(): the jobs of the queue completed and failed for good so far.
local function metrics(keys, args)
  local totals = redis.call('HMGET', keys[1] .. 'metrics', 'completed', 'failed')
  return {tonumber(totals[1] or '0'), tonumber(totals[2] or '0')}
end

local ro = {'no-writes'}
local function reg(name, fn, flags)
  local function call(keys, args)
    begin_events(keys[1])
    finished_sets = {}
    tally = {completed = 0, failed = 0}
    local result = fn(keys, args)
    flush_finished(keys[1])
    flush_tally(keys[1])
    flush_events()
    return result
  end
  redis.register_function{function_name = 'glidemq___V___' .. name, callback = call, flags = flags}
end

reg('take', take)
reg('add', add)
reg('extend', extend)
reg('stalled', stalled)
reg('counts', counts, ro)
reg('set_paused', set_paused)
reg('get_ids', get_ids, ro)
reg('jobs', jobs, ro)
reg('state_of', state_of, ro)
reg('remove', remove)
reg('drain', drain)
reg('clean', clean)
reg('retry_jobs', retry_jobs)
reg('retry', retry)
reg('promote', promote)
reg('progress', progress)
reg('log', log)
reg('obliterate', obliterate)
reg('worker_beat', worker_beat)
reg('worker_leave', worker_leave)
reg('workers', workers)
reg('metrics', metrics, ro)
