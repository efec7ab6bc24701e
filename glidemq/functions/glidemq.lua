#!lua name=glidemq___V__
-- All queue logic of glidemq. Every function takes one key: the queue's key base
-- "<prefix>:{<queue>}:". Every other key of the queue is derived from it, so all of a
-- queue's keys share one hash tag (one cluster slot). Times are server times in ms.

local EVENTS_MAXLEN = '10000'
local PRIO_SHIFT = 2147483648      -- 2^31: priority * 2^31 + sequence stays below 2^53
local DELAY_SHIFT = 4096           -- delayed score: due_ms * 4096 + sequence
local STALLED_REASON = 'job stalled more than allowable limit'
local PACKED_NIL = '\192'  -- msgpack nil: what a processor returning None sends
-- Job hash fields left at their default are not stored (every argument and reply element
-- of a command costs the server allocations); readers fill the defaults in.
local OPTIONAL_FIELDS = {{'dl', 4, '0'}, {'p', 5, '0'}, {'at', 6, '1'}, {'bo', 7, ''}, {'to', 8, '0'}, {'lf', 9, '0'},
  {'rc', 10, '-1'}, {'rf', 11, '-1'}}

-- The decimal text of an integer. Turning a number into text costs the server a few
-- thousand instructions with tostring (or when a number is passed to redis.call), about a
-- third of that with %d, so hot paths hand commands text.
local function digits(n)
  return string.format('%d', n)
end

-- Lua unpacks at most ~8,000 values into one call: longer lists (a worker of high
-- concurrency, a big acknowledgement) go in calls of SPREAD values (even: score/member pairs
-- stay together). redis.call(cmd, key, o1, o2, list...) with integer replies summed and array
-- replies joined.
local SPREAD = 4000

local function call_all(cmd, key, list, o1, o2)
  local n = #list
  if n <= SPREAD then
    if o2 then return redis.call(cmd, key, o1, o2, unpack(list)) end
    if o1 then return redis.call(cmd, key, o1, unpack(list)) end
    return redis.call(cmd, key, unpack(list))
  end
  local total, joined = 0, nil
  for i = 1, n, SPREAD do
    local j = math.min(i + SPREAD - 1, n)
    local reply
    if o2 then
      reply = redis.call(cmd, key, o1, o2, unpack(list, i, j))
    elseif o1 then
      reply = redis.call(cmd, key, o1, unpack(list, i, j))
    else
      reply = redis.call(cmd, key, unpack(list, i, j))
    end
    if type(reply) == 'table' then
      joined = joined or {}
      for k = 1, j - i + 1 do joined[#joined + 1] = reply[k] end
    else
      total = total + reply
    end
  end
  return joined or total
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Events are buffered during a call and written when it ends as one stream entry with one
-- field, c: msgpack [name, keys, [<job id>, value, ..., <job id>, value, ...], name, ...]
-- where keys names the values that follow each job id ("k1,k2", "" for none). Packing them
-- costs the server far less than one command argument per value.
local EVENT_KEYS = {
  added = 'name', completed = 'return_value', deduplicated = 'deduplication_id', delayed = 'delay',
  failed = 'failed_reason,attempts_made', progress = 'progress', removed = 'prev',
}
local EVENT_WIDTH = {  -- values per job id of each event with keys
  added = 1, completed = 1, deduplicated = 1, delayed = 1, failed = 2, progress = 1, removed = 1,
}
local pending = {base = '', order = {}, lists = {}}

local function begin_events(base)
  pending = {base = base, order = {}, lists = {}}
end

-- The list of `event`'s values of this call, to append job ids and values to in place of
-- emit in loops over many jobs.
local function event_list(event)
  local list = pending.lists[event]
  if not list then
    list = {}
    pending.lists[event] = list
    pending.order[#pending.order + 1] = event
  end
  return list
end

-- An event of job `id` ('' for the queue) with the values of its keys (EVENT_KEYS), v1 then
-- v2 (nil written as '').
local function emit(base, event, id, v1, v2)
  local list = event_list(event)
  local n = #list + 1
  list[n] = id
  local width = EVENT_WIDTH[event]
  if width then
    if v1 == nil then v1 = '' end
    list[n + 1] = v1
    if width == 2 then
      if v2 == nil then v2 = '' end
      list[n + 2] = v2
    end
  end
end

local function flush_events()
  if #pending.order > 0 then
    local batch = {}
    for _, event in ipairs(pending.order) do
      batch[#batch + 1] = event
      batch[#batch + 1] = EVENT_KEYS[event] or ''
      batch[#batch + 1] = pending.lists[event]
    end
    redis.call('XADD', pending.base .. 'events', 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'c', cmsgpack.pack(batch))
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
  if tally.completed > 0 then redis.call('HINCRBY', base .. 'metrics', 'completed', digits(tally.completed)) end
  if tally.failed > 0 then redis.call('HINCRBY', base .. 'metrics', 'failed', digits(tally.failed)) end
  tally = {completed = 0, failed = 0}
end

local function wake(base)
  redis.call('ZADD', base .. 'marker', '0', 'w')
end

local function seq(base)
  return redis.call('INCR', base .. 'seq')
end

-- Flows (parent and children). A parent waits in state 'waiting-children' (zset
-- 'waiting-children' in the order written) with the keys of its pending children in the set
-- 'pend:<id>'; its children's outcomes land in the hashes 'cv:<id>' (return values) and
-- 'cf:<id>' (failure reasons), keyed by the child's key "<prefix>:<queue>:<id>". A child
-- holds its parent in field 'pp' (parent's key base .. parent id). Its terminal transition
-- appends a notification to the outbox of its own queue (zset 'ob' of entry ids by the time
-- they are due, hash 'obv' of the entries); a worker delivers it to the parent's queue
-- (flow_deliver, idempotent) and acknowledges it (flow_ack). An entry whose claim ran out
-- (the worker died) is claimed again by any worker of the queue.
local FLOW_EARLY_TTL = 86400
local outbox_added = 0  -- notifications written by the current call
-- Whether this queue holds children (meta field 'fc', set when the first child is written):
-- looked up once per call, so jobs of queues without children pay no per-job command.
local has_children = nil

local function flow_begin()
  outbox_added = 0
  has_children = nil
end

local function flow_child_key(base, id)
  return (string.gsub(base, '[{}]', '')) .. id
end

-- kind: c(ompleted, payload = return value), f(ailed for good, payload = reason), r(emoved).
local function flow_outbox_push(base, parent, ckey, kind, payload)
  local pbase, pid = string.match(parent, '^(.*:)([^:]*)$')
  local eid = digits(seq(base))
  redis.call('HSET', base .. 'obv', eid, cmsgpack.pack({pbase, pid, ckey, kind, payload}))
  redis.call('ZADD', base .. 'ob', 0, eid)
  outbox_added = outbox_added + 1
end

local function flow_notify(base, id, kind, payload)
  if has_children == nil then has_children = redis.call('HGET', base .. 'meta', 'fc') == '1' end
  if not has_children then return end
  local pp = redis.call('HGET', base .. 'j:' .. id, 'pp')
  if pp then flow_outbox_push(base, pp, flow_child_key(base, id), kind, payload) end
end

-- Active jobs are members "<id>:<token>" of the active set: removing that exact member is
-- what ends an activation, so a worker holding an old token is fenced off.
local function lease(id, token)
  return id .. ':' .. token
end

local function lease_id(member)
  return string.match(member, '^(.*):[^:]*$')
end

-- A member longer than zset-max-listpack-value (64 bytes) keeps the active set in its
-- hashtable encoding: adding and removing leases then costs a hash lookup, not a scan of a
-- listpack of every lease. It is added with every batch of leases, scored +inf (never due),
-- and not counted or listed as a job.
local ACTIVE_ANCHOR = 'active-set-anchor-kept-for-its-hashtable-encoding-never-a-job-lease-of-any-worker:-'

local function active_count(base)
  local n = redis.call('ZCARD', base .. 'active')
  if n > 0 and redis.call('ZSCORE', base .. 'active', ACTIVE_ANCHOR) then n = n - 1 end
  return n
end

-- The anchor goes with the last lease: an idle queue has no active set, as before there was
-- an anchor (so a library of an earlier release sharing the queue counts it right).
local function drop_lone_anchor(base)
  local key = base .. 'active'
  if redis.call('ZCARD', key) == 1 and redis.call('ZSCORE', key, ACTIVE_ANCHOR) then redis.call('DEL', key) end
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

-- An add row of a job whose options are all at their default is just {id, name, data}.
local DEFAULT_OPTIONS = {'0', '0', '1', '', '0', '0', '-1', '-1'}  -- row fields 4 to 11
local NO_EXTRAS = {}

-- The row with the default options written out (see add).
local function full_row(j)
  if j[4] == nil then
    for k, value in ipairs(DEFAULT_OPTIONS) do j[k + 3] = value end
  end
  return j
end

-- The hash fields of a new job from its add row (see add): fields left at their default
-- are not stored.
local function job_fields(j, now_s, state)
  local fields = {'n', j[2], 'd', j[3], 'ts', now_s, 's', state}
  if j[4] == nil then return fields end
  for _, opt in ipairs(OPTIONAL_FIELDS) do
    local value = j[opt[2]]
    if value ~= opt[3] then
      fields[#fields + 1] = opt[1]
      fields[#fields + 1] = value
    end
  end
  return fields
end

local function delete_job(base, id)
  redis.call('DEL', base .. 'j:' .. id, base .. 'l:' .. id,
    base .. 'pend:' .. id, base .. 'cv:' .. id, base .. 'cf:' .. id)  -- flow_: a parent's children
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
    call_all('ZADD', base .. set, members)
  end
  finished_sets = {}
end

-- False during a take on a queue that never saw a deduplicated add: finishing a job then
-- skips looking for its deduplication key.
local dedup_used = true

local function release_dedup(base, id)
  if not dedup_used then return end
  local did = redis.call('HGET', base .. 'j:' .. id, 'di')
  if not did then return end
  local dkey = base .. 'dd:' .. did
  if redis.call('PTTL', dkey) == -1 and redis.call('GET', dkey) == id then redis.call('DEL', dkey) end
end

-- Ends a job in finished set `set` ('completed' or 'failed') with its hash fields `...`.
local function finish(base, id, set, keep, now_s, ...)
  release_dedup(base, id)
  if keep == 0 then
    delete_job(base, id)
    return
  end
  redis.call('HSET', base .. 'j:' .. id, ...)
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

-- Set per call (take, stalled): final failures also go to the dead-letter outbox, in the
-- same call, so a worker dying before it copies them to the dead-letter queue loses nothing.
local dead_letters = false

local function dead_letter(base, id, am, reason, now_s)
  local f = redis.call('HMGET', base .. 'j:' .. id, 'n', 'd')
  redis.call('RPUSH', base .. 'dlq', cmsgpack.pack({id, f[1] or '', f[2] or '', reason, am, now_s}))
end

local function fail_for_good(base, id, am, reason, stack, keep, now_s)
  flow_notify(base, id, 'f', reason)
  count_finished('failed')
  emit(base, 'failed', id, reason, am)
  if dead_letters then dead_letter(base, id, am, reason, now_s) end
  finish(base, id, 'failed', keep, now_s, 's', 'failed', 'fo', now_s, 'am', am, 'fr', reason, 'st', stack)
end

-- Makes a job that is in no structure delayed (delay ms > 0) or waiting, and wakes workers.
local function place(base, id, prio, front, delay, now)
  local jk = base .. 'j:' .. id
  if delay > 0 then
    redis.call('HSET', jk, 's', 'delayed')
    schedule(base, id, now + delay)
    emit(base, 'delayed', id, now + delay)
  else
    redis.call('HSET', jk, 's', 'waiting')
    enqueue(base, id, prio, front)
    emit(base, 'waiting', id)
  end
  wake(base)
end

-- Puts a job back to waiting (front) or delayed without using an attempt.
local function release(base, id, prio, delay, now)
  place(base, id, prio, true, delay, now)
end

-- Finishes one activation of job `id` leased under `token`. kind c(omplete): payload = return
-- value; f(ail): payload = reason, extra = stack, retry = delay ms or -1 for a final failure;
-- r(elease): retry = delay ms. attempts_made and keep (remove_on_complete/fail) come from the
-- worker holding the lease. Returns status (0 stale, 1 completed, 2 failed, 3 retrying, 4
-- released).
local function finish_one(base, id, token, kind, am, payload, keep, extra, retry, priority, now, now_s)
  if redis.call('ZREM', base .. 'active', lease(id, token)) == 0 then return 0 end
  if kind == 'c' then
    count_finished('completed')
    emit(base, 'completed', id, payload)
    flow_notify(base, id, 'c', payload)
    if payload == PACKED_NIL then  -- a return value of None is not stored (readers default to it)
      finish(base, id, 'completed', keep, now_s, 's', 'completed', 'fo', now_s, 'am', am)
    else
      finish(base, id, 'completed', keep, now_s, 's', 'completed', 'fo', now_s, 'am', am, 'rv', payload)
    end
    return 1
  elseif kind == 'r' then
    release(base, id, priority, retry, now)
    return 4
  end
  if retry < 0 then
    fail_for_good(base, id, am, payload, extra, keep, now_s)
    return 2
  end
  redis.call('HSET', base .. 'j:' .. id, 'am', am, 'fr', payload, 'st', extra)
  release(base, id, priority, retry, now)
  return 3
end

-- finish_one for `count` completions from rows[i] on, in the common case: kept without a
-- limit, on a queue without deduplication ids or flows (has_children known false).
local function complete_kept(base, rows, i, count, token, now_s, results)
  local active, jbase, suffix, r, done = base .. 'active', base .. 'j:', ':' .. token, #results, 0
  local completed, events, c, e  -- made on the first completion: a set or an event is never empty
  for k = 1, count do
    local id, payload = rows[i], rows[i + 2]
    if redis.call('ZREM', active, id .. suffix) == 0 then
      results[r + k] = 0
    else
      results[r + k] = 1
      if not completed then
        completed = finished_sets.completed or {}
        finished_sets.completed = completed
        events = event_list('completed')
        c, e = #completed, #events
      end
      events[e + 1], events[e + 2], e = id, payload, e + 2
      if payload == PACKED_NIL then
        redis.call('HSET', jbase .. id, 's', 'completed', 'fo', now_s, 'am', rows[i + 1])
      else
        redis.call('HSET', jbase .. id, 's', 'completed', 'fo', now_s, 'am', rows[i + 1], 'rv', payload)
      end
      completed[c + 1], completed[c + 2], c = now_s, id, c + 2
      done = done + 1
    end
    i = i + 3
  end
  tally.completed = tally.completed + done
end

-- Finishes the jobs of a take's `finished` argument: a flat msgpack array of groups, each
-- token, keep, kind, count and `count` rows of that lease token, keep and kind: id,
-- attempts_made, payload for a completion, followed by extra, retry, priority for a failure
-- or a release. Returns the status of each row, in order.
local function finish_all(base, rows, now, now_s)
  local results, i, n = {}, 1, #rows
  while i <= n do
    local token, keep, kind, count = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
    i = i + 4
    if kind == 'c' and keep < 0 and not dedup_used and not has_children then
      complete_kept(base, rows, i, count, token, now_s, results)
      i = i + 3 * count
    elseif kind == 'c' then
      for _ = 1, count do
        results[#results + 1] = finish_one(base, rows[i], token, 'c', rows[i + 1], rows[i + 2], keep, nil, nil, nil,
          now, now_s)
        i = i + 3
      end
    else
      for _ = 1, count do
        results[#results + 1] = finish_one(base, rows[i], token, kind, rows[i + 1], rows[i + 2], keep, rows[i + 3],
          rows[i + 4], rows[i + 5], now, now_s)
        i = i + 6
      end
    end
  end
  return results
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
    local first = redis.call('ZRANGE', base .. 'delayed', '0', '0', 'WITHSCORES')
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

local function any_waiting(base)
  return redis.call('LLEN', base .. 'wait') > 0 or redis.call('ZCARD', base .. 'prio') > 0
end

-- How many jobs limits allow to start now, and ms until the rate limit lets more start (0:
-- not rate limited). meta = {paused, rate max, rate ms, global concurrency}; the queue's
-- rate limit wins over the worker's own (limiter = {max, ms} or nil).
local function room(base, want, meta, limiter)
  if meta[4] then
    want = math.min(want, tonumber(meta[4]) - active_count(base))
  end
  local max = tonumber(meta[2] or (limiter and limiter[1]) or '0')
  if want <= 0 or max <= 0 then return want, 0, nil end
  local used = tonumber(redis.call('GET', base .. 'limiter') or '0')
  if used >= max then
    if waiting_count(base) == 0 then return 0, 0, nil end
    local ttl = redis.call('PTTL', base .. 'limiter')
    if ttl < 0 then
      redis.call('DEL', base .. 'limiter')
      return want, 0, nil
    end
    return 0, math.max(ttl, 1), nil
  end
  return math.min(want, max - used), 0, meta[3] or limiter[2]
end

local function count_started(base, n, window_ms)
  if n > 0 and redis.call('INCRBY', base .. 'limiter', n) == n then
    redis.call('PEXPIRE', base .. 'limiter', window_ms)
  end
end

local sched_activated -- defined with the job schedulers below

-- Activates up to `want` jobs; returns {token, id, hash, id, hash, ...} (each job's hash as
-- its flat HGETALL list, read before it turned active: the worker picks the fields it needs)
-- or nil, and the ms until the rate limit lets more start (0: not limited; -1: the queue is
-- paused, so the worker hands back the jobs it holds but has not started). `claim` (or nil)
-- is the token to lease them under (see take).
local function activate(base, want, lock_ms, now, now_s, meta, limiter, claim)
  if meta[1] == '1' then return nil, -1 end
  if want <= 0 then return nil, 0 end
  local limited, window
  want, limited, window = room(base, want, meta, limiter)
  if want <= 0 then return nil, limited end
  local ids = redis.call('LPOP', base .. 'wait', digits(want)) or {}
  if #ids < want then
    local popped = redis.call('ZPOPMIN', base .. 'prio', want - #ids)
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  end
  if #ids == 0 then return nil, 0 end
  if window then count_started(base, #ids, window) end
  -- Sequence and server time: a token never repeats, even after a restart that lost the
  -- data (and the sequence), so a worker from before cannot finish a job that reuses an id.
  local token = claim or (digits(seq(base)) .. '-' .. digits(now))
  local deadline = digits(now + lock_ms)
  local out, scores = {token}, {'+inf', ACTIVE_ANCHOR}
  local events = event_list('active')
  local jbase, suffix, e = base .. 'j:', ':' .. token, #events
  for k, id in ipairs(ids) do
    local jk = jbase .. id
    out[2 * k] = id
    out[2 * k + 1] = redis.call('HGETALL', jk)
    redis.call('HSET', jk, 's', 'active', 'po', now_s)
    scores[2 * k + 1] = deadline
    scores[2 * k + 2] = id .. suffix  -- lease(id, token)
    events[e + k] = id
    if string.byte(id) == 114 and string.sub(id, 1, 7) == 'repeat:' then sched_activated(base, id, now) end
  end
  call_all('ZADD', base .. 'active', scores)
  if #ids == want and any_waiting(base) then
    wake(base)
  else
    emit(base, 'drained', '')
  end
  return out, 0
end

-- take(lock_ms, want, finished, options[, claim]): finishes a batch of jobs and activates
-- the next ones in one call. `finished`: the jobs to finish (see finish_all; '' for none).
-- `options` ('' for none): msgpack {dead_letters '1'/'0', rate max, rate ms} of the worker.
-- `claim`: a token the worker made up (random, never reused, without ':') to lease the jobs
-- under, so that it can hand them back with release_claim when it never got the reply (a
-- take sent behind a blocking wait whose connection closed); workers send one with every take,
-- which saves the server making one. Returns {now, next_delay_ms,
-- {status} * n, the activated jobs (see activate) as msgpack ('' for none), ms until the rate
-- limit lets jobs start (0: not limited; -1: the queue is paused), flow notifications written}.
local function take(keys, args)
  local base = keys[1]
  local lock_ms, want = tonumber(args[1]), tonumber(args[2])
  local limiter
  if args[4] and args[4] ~= '' then
    local o = cmsgpack.unpack(args[4])
    dead_letters = o[1] == '1'
    if o[2] ~= '' then limiter = {o[2], o[3]} end
  end
  local now = now_ms()
  local now_s = digits(now)
  local meta = redis.call('HMGET', base .. 'meta', 'paused', 'rlm', 'rld', 'gc', 'dd', 'fc')
  dedup_used = meta[5] == '1'
  has_children = meta[6] == '1'
  local results = {}
  if args[3] ~= '' then
    results = finish_all(base, cmsgpack.unpack(args[3]), now, now_s)
    -- a job ending frees a slot of the global concurrency: wake workers waiting for one
    if meta[4] and any_waiting(base) then wake(base) end
  end
  local delay = next_delay(base, now)
  local claim = args[5]
  if claim == '' then claim = nil end
  local jobs, limited = activate(base, want, lock_ms, now, now_s, meta, limiter, claim)
  local packed = ''
  if jobs then
    packed = cmsgpack.pack(jobs)
  elseif args[3] ~= '' then
    drop_lone_anchor(base)
  end
  if delay == 0 then delay = next_delay(base, now) end
  return {now, delay, results, packed, limited, outbox_added}
end

-- The job an add with deduplication id `did` must yield to, or nil. A key with a ttl
-- blocks until it expires (even after its job finished); one without blocks while its job
-- has not finished.
local function dedup_holder(base, did)
  local dkey = base .. 'dd:' .. did
  local holder = redis.call('GET', dkey)
  if not holder then return nil end
  if redis.call('PTTL', dkey) > 0 then return holder end
  local state = redis.call('HGET', base .. 'j:' .. holder, 's')
  if state and state ~= 'completed' and state ~= 'failed' then return holder end
  return nil
end

-- A skipped add: extend restarts the ttl; replace gives a delayed holder the new data and delay.
local function deduplicated(base, holder, j, ext, now)
  local dkey = base .. 'dd:' .. ext.di
  if ext.dt and (ext.dx == '1' or ext.dr == '1') then redis.call('PEXPIRE', dkey, ext.dt) end
  local jk = base .. 'j:' .. holder
  if ext.dr == '1' and redis.call('HGET', jk, 's') == 'delayed' then
    redis.call('ZREM', base .. 'delayed', holder)
    redis.call('HSET', jk, 'd', j[3], 'dl', j[4])
    local f = redis.call('HMGET', jk, 'p', 'lf')
    -- woken also for a new delay: a worker may be sleeping until the old, later due time
    place(base, holder, tonumber(f[1] or '0'), f[2] == '1', tonumber(j[4]), now)
  end
  emit(base, 'deduplicated', holder, ext.di)
end

-- New jobs of one add call bound for the tail of the wait list, pushed there together.
local function push_tail(base, tail)
  if #tail == 0 then return end
  call_all('RPUSH', base .. 'wait', tail)
  for k = #tail, 1, -1 do tail[k] = nil end
end

-- Writes one job unless its custom id exists or a deduplication id holds it back; a job
-- without a custom id gets `auto_id`. A plain waiting job is appended to `tail` (see
-- push_tail). Returns the job's id and 1 when it was created.
local function add_one(base, j, now, now_s, trace, auto_id, tail)
  local id = j[1]
  local ext = j[12] or NO_EXTRAS
  if id ~= '' and redis.call('EXISTS', base .. 'j:' .. id) == 1 then return id, 0 end
  if ext.di then
    local holder = dedup_holder(base, ext.di)
    if holder then
      push_tail(base, tail)  -- the holder may be a job of this very call
      deduplicated(base, holder, j, ext, now)
      return holder, 0
    end
  end
  if id == '' then id = auto_id end
  local delay, prio, lifo = 0, 0, '0'
  if j[4] ~= nil then delay, prio, lifo = tonumber(j[4]), tonumber(j[5]), j[9] end
  local state = 'waiting'
  if delay > 0 then state = 'delayed' end
  local fields = job_fields(j, now_s, state)
  if ext.di then
    redis.call('HSET', base .. 'meta', 'dd', '1')
    fields[#fields + 1] = 'di'
    fields[#fields + 1] = ext.di
    if ext.dt then
      redis.call('SET', base .. 'dd:' .. ext.di, id, 'PX', ext.dt)
    else
      redis.call('SET', base .. 'dd:' .. ext.di, id)
    end
  end
  if trace ~= '' then
    fields[#fields + 1] = 'tc'
    fields[#fields + 1] = trace
  end
  redis.call('HSET', base .. 'j:' .. id, unpack(fields))
  emit(base, 'added', id, j[2])
  if delay > 0 then
    schedule(base, id, now + delay)
    emit(base, 'delayed', id, now + delay)
  elseif prio == 0 and lifo ~= '1' then
    tail[#tail + 1] = id
  else
    enqueue(base, id, prio, lifo == '1')
  end
  return id, 1
end

-- add(jobs): `jobs` is a msgpack array of {id, name, data, delay_ms, priority, attempts,
-- backoff, timeout_ms, lifo, rc, rf, ext} or, for a job with default options, {id, name,
-- data}; numbers as decimal strings (Lua turns numbers
-- into strings slowly, so the client does it); ext is a map of optional extras
-- (di/dt/dx/dr: deduplication id, ttl ms, extend, replace). `traces` (optional): a msgpack
-- array of each job's trace context ('' for none), stored as field 'tc'. Returns {now, [id, created] * n};
-- an existing custom id or a deduplicated add is left untouched (created = 0).
local function add(keys, args)
  local base = keys[1]
  local now = now_ms()
  local now_s = digits(now)
  local out = {now}
  local woke = false
  local traces = false
  if args[2] then traces = cmsgpack.unpack(args[2]) end
  local rows = cmsgpack.unpack(args[1])
  -- the ids of the jobs without a custom id, taken in one command
  local auto = 0
  for _, j in ipairs(rows) do
    if j[1] == '' then auto = auto + 1 end
  end
  local next_id = 0
  if auto > 0 then next_id = redis.call('INCRBY', base .. 'id', digits(auto)) - auto end
  local tail = {}
  local job_key = base .. 'j:'
  for i, j in ipairs(rows) do
    local auto_id = nil
    if j[1] == '' then
      next_id = next_id + 1
      auto_id = digits(next_id)
    end
    local id, created = auto_id, 1
    if auto_id and j[4] == nil and not traces then
      -- the common case, a new id and every option at its default, without add_one's checks
      local name = j[2]
      redis.call('HSET', job_key .. id, 'n', name, 'd', j[3], 'ts', now_s, 's', 'waiting')
      local added = event_list('added')
      local e = #added
      added[e + 1], added[e + 2] = id, name
      tail[#tail + 1] = id
    else
      id, created = add_one(base, j, now, now_s, traces and traces[i] or '', auto_id, tail)
    end
    if created == 1 then woke = true end
    out[2 * i], out[2 * i + 1] = id, created
  end
  push_tail(base, tail)
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
  return call_all('ZADD', base .. 'active', pairs_, 'XX', 'CH')
end

-- Job ids in the order they were added: auto ids (decimal) by number, custom ids after them.
local function added_order(a, b)
  local na, nb = tonumber(a), tonumber(b)
  if na and nb then return na < nb end
  if na or nb then return na ~= nil end
  return a < b
end

-- release_claim(claim): puts the jobs leased under `claim` (see take) back at the front of
-- the queue, in the order they were added, without using an attempt; their leases end, so
-- the worker that made the claim cannot finish them either. Returns their ids.
local function release_claim(keys, args)
  local base = keys[1]
  local key = base .. 'active'
  local ids, cursor = {}, '0'
  repeat
    local page = redis.call('ZSCAN', key, cursor, 'MATCH', '*:' .. args[1], 'COUNT', '1000')
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if redis.call('ZREM', key, page[2][i]) == 1 then ids[#ids + 1] = lease_id(page[2][i]) end
    end
  until cursor == '0'
  if #ids == 0 then return ids end
  table.sort(ids, added_order)
  local now = now_ms()
  for i = #ids, 1, -1 do  -- pushed to the front last first
    local f = redis.call('HMGET', base .. 'j:' .. ids[i], 'p', 'n')
    if f[2] then release(base, ids[i], tonumber(f[1] or '0'), 0, now) end  -- unless it was removed
  end
  drop_lone_anchor(base)
  return ids
end

-- stalled(max_stalled, limit): recovers jobs whose lease ran out.
-- Returns {recovered ids, failed ids}.
local function stalled(keys, args)
  local base = keys[1]
  local max_stalled, limit = tonumber(args[1]), tonumber(args[2])
  dead_letters = args[3] == '1'
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
  if #members > 0 then drop_lone_anchor(base) end
  return {recovered, failed}
end

local function counts(keys, args)
  local base = keys[1]
  return {
    waiting_count(base),
    active_count(base),
    redis.call('ZCARD', base .. 'delayed'),
    redis.call('ZCARD', base .. 'completed'),
    redis.call('ZCARD', base .. 'failed'),
    redis.call('HGET', base .. 'meta', 'paused') == '1' and 1 or 0,
    redis.call('ZCARD', base .. 'waiting-children'),  -- flow_
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
    local total = active_count(base)  -- the anchor, if there, ranks last (+inf)
    if stop < 0 then stop = total + stop end
    if start < 0 then start = math.max(total + start, 0) end
    stop = math.min(stop, total - 1)
    if start > stop then return {} end
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
  elseif state == 'delayed' or state == 'completed' or state == 'failed' or state == 'waiting-children' then
    redis.call('ZREM', base .. state, id)
  end
end

-- remove(id): 1 removed (2: and its parent notified), 0 unknown, -1 active (refused).
local function remove(keys, args)
  local base = keys[1]
  local id = args[1]
  local state = redis.call('HGET', base .. 'j:' .. id, 's')
  if not state then return 0 end
  if state == 'active' then return -1 end
  if state ~= 'completed' and state ~= 'failed' then flow_notify(base, id, 'r', '') end
  unlink(base, id, state)
  release_dedup(base, id)
  delete_job(base, id)
  emit(base, 'removed', id, state)
  if outbox_added > 0 then return 2 end  -- flow_: a parent was notified
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
      emit(base, 'removed', id, state)
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
  emit(base, 'progress', args[1], args[3])
  return 1
end

local function log(keys, args)
  local base = keys[1]
  if redis.call('EXISTS', base .. 'j:' .. args[1]) == 0 then return -1 end
  return redis.call('RPUSH', base .. 'l:' .. args[1], args[2])
end

-- Job schedulers ------------------------------------------------------------------------
-- A scheduler is the hash "sched:<id>": g generation (bumped by every upsert), ev every ms
-- ('' for cron), cr cron, tz, st start ms, en end ms, lm limit ('' when not given), jb the job
-- template (one row as `add` takes it), c iterations created, nx slot (ms) of the pending
-- iteration ('' for none), af the time after which a cron's next slot falls. The zset
-- "schedulers" lists them. The pending iteration is an ordinary job "repeat:<id>:<slot ms>",
-- delayed until its slot. When it is activated the next one is created: `every` here; cron
-- (which Lua cannot evaluate) through "sched-todo", a zset of schedulers waiting for a client
-- to compute their next slot (score: when a client may claim it), closed by sched_next.

local SCHED_FIELDS = {'g', 'ev', 'cr', 'tz', 'st', 'en', 'lm', 'jb', 'c', 'nx', 'af'}
local SCHED_CONFIG = {'ev', 'cr', 'tz', 'st', 'en', 'lm', 'jb'}

local function sched_key(base, sid)
  return base .. 'sched:' .. sid
end

local function ms_text(ms)
  return string.format('%d', ms)
end

local function sched_read(base, sid)
  local f = redis.call('HMGET', sched_key(base, sid), unpack(SCHED_FIELDS))
  if not f[1] then return nil end
  local h = {}
  for i, name in ipairs(SCHED_FIELDS) do h[name] = f[i] or '' end
  return h
end

-- Creates the iteration job of `slot`; false when a job with its id exists already.
local function create_iteration(base, sid, template, slot, now)
  local id = 'repeat:' .. sid .. ':' .. ms_text(slot)
  local jk = base .. 'j:' .. id
  if redis.call('EXISTS', jk) == 1 then return false end
  local j = full_row(cmsgpack.unpack(template)[1])
  local delay = math.max(slot - now, 0)
  j[4] = ms_text(delay)
  local state = 'waiting'
  if delay > 0 then state = 'delayed' end
  local fields = job_fields(j, ms_text(now), state)
  redis.call('HSET', jk, unpack(fields))
  emit(base, 'added', id, j[2])
  if delay > 0 then
    schedule(base, id, slot)
    emit(base, 'delayed', id, slot)
  else
    enqueue(base, id, tonumber(j[5]), j[9] == '1')
  end
  wake(base)
  return true
end

local function sched_exhausted(h, slot)
  return (h.lm ~= '' and tonumber(h.c) >= tonumber(h.lm)) or (h.en ~= '' and slot > tonumber(h.en))
end

-- A cron scheduler waits (claimable now) for a client to compute its first slot after `after`.
local function sched_await_cron(base, sid, after)
  redis.call('HSET', sched_key(base, sid), 'nx', '', 'af', ms_text(after))
  redis.call('ZADD', base .. 'sched-todo', 0, sid)
end

-- Makes `slot` the pending iteration, unless the limit or the end stops the scheduler. A slot
-- whose job exists already (made by an earlier version of the scheduler) is not made twice.
local function sched_place(base, sid, h, slot, now)
  local key = sched_key(base, sid)
  while true do
    if sched_exhausted(h, slot) then
      redis.call('HSET', key, 'nx', '')
      return
    end
    if create_iteration(base, sid, h.jb, slot, now) then
      h.c = ms_text(tonumber(h.c) + 1)
      h.nx = ms_text(slot)
      redis.call('HSET', key, 'nx', h.nx, 'c', h.c)
      return
    end
    if h.ev == '' then
      sched_await_cron(base, sid, slot)
      return
    end
    slot = slot + tonumber(h.ev)
  end
end

-- Called by activate for jobs whose id starts with "repeat:".
function sched_activated(base, id, now)
  local sid, slot = string.match(id, '^repeat:([^:]+):(%d+)$')
  if not sid then return end
  local h = sched_read(base, sid)
  if not h or h.nx ~= slot then return end
  slot = tonumber(slot)
  if h.ev == '' then
    if sched_exhausted(h, slot) then
      redis.call('HSET', sched_key(base, sid), 'nx', '')
    else
      sched_await_cron(base, sid, slot)
    end
    return
  end
  -- the first slot of the grid after now: slots missed meanwhile get no job of their own
  local every = tonumber(h.ev)
  sched_place(base, sid, h, slot + every * (math.max(math.floor((now - slot) / every), 0) + 1), now)
end

-- Deletes the pending iteration if no worker has started it.
local function sched_drop_pending(base, sid, h)
  if h.nx == '' then return end
  local id = 'repeat:' .. sid .. ':' .. h.nx
  local state = redis.call('HGET', base .. 'j:' .. id, 's')
  if state == 'delayed' or state == 'waiting' then
    unlink(base, id, state)
    delete_job(base, id)
    emit(base, 'removed', id, state)
  end
end

-- An upsert that changes nothing keeps the scheduler as it is (every process of an
-- application may upsert its schedulers when it starts).
local function sched_unchanged(base, sid, h, args)
  for i, name in ipairs(SCHED_CONFIG) do
    if h[name] ~= args[i + 1] then return false end
  end
  return h.nx == '' or redis.call('EXISTS', base .. 'j:repeat:' .. sid .. ':' .. h.nx) == 1
end

-- sched_upsert(id, every_ms, cron, tz, start_ms, end_ms, limit, template, lease_ms): creates or
-- replaces a scheduler. Returns {now, generation, after}: after >= 0 when the caller holds the
-- lease to compute a cron scheduler's first slot after that time, else -1.
local function sched_upsert(keys, args)
  local base = keys[1]
  local sid = args[1]
  local key = sched_key(base, sid)
  local now = now_ms()
  local old = sched_read(base, sid)
  if old then
    if sched_unchanged(base, sid, old, args) then return {now, tonumber(old.g), -1} end
    sched_drop_pending(base, sid, old)
  end
  local g = redis.call('HINCRBY', key, 'g', 1)
  local fields = {'c', '0', 'nx', '', 'af', ''}
  for i, name in ipairs(SCHED_CONFIG) do
    fields[#fields + 1] = name
    fields[#fields + 1] = args[i + 1]
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('ZADD', base .. 'schedulers', 'NX', now, sid)
  redis.call('ZREM', base .. 'sched-todo', sid)
  local start = tonumber(args[5]) or now
  if args[2] ~= '' then
    sched_place(base, sid, sched_read(base, sid), start, now)
    return {now, g, -1}
  end
  local after = math.max(now, start - 1)
  redis.call('HSET', key, 'af', ms_text(after))
  redis.call('ZADD', base .. 'sched-todo', now + tonumber(args[9]), sid)
  return {now, g, after}
end

-- sched_claim(lease_ms, limit): cron schedulers waiting for their next slot, leased to the
-- caller. Returns {now, {id, generation, cron, tz, after ms} ...}.
local function sched_claim(keys, args)
  local base = keys[1]
  local todo = base .. 'sched-todo'
  local now = now_ms()
  local out = {now}
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', todo, '-inf', now, 'LIMIT', 0, tonumber(args[2]))) do
    local h = sched_read(base, sid)
    if h and h.nx == '' and h.cr ~= '' then
      redis.call('ZADD', todo, now + tonumber(args[1]), sid)
      out[#out + 1] = {sid, h.g, h.cr, h.tz, h.af}
    else
      redis.call('ZREM', todo, sid)
    end
  end
  return out
end

-- sched_next(id, generation, slot_ms or ''): makes slot_ms the pending iteration of a cron scheduler
-- waiting for one. 1 done, 0 ignored (replaced or removed meanwhile, or done already).
local function sched_next(keys, args)
  local base = keys[1]
  local sid = args[1]
  local h = sched_read(base, sid)
  if not h or h.g ~= args[2] or h.cr == '' then return 0 end
  redis.call('ZREM', base .. 'sched-todo', sid)
  local slot = tonumber(args[3])
  if h.nx ~= '' or not slot then return 0 end  -- no slot: the cron expression fires no more
  sched_place(base, sid, h, slot, now_ms())
  return 1
end

-- sched_repair(cursor, count): looks at `count` schedulers from rank `cursor`; one whose pending
-- iteration was deleted by hand (remove, drain, clean) goes on with its next slot, as if that
-- iteration had started now. Returns the next cursor (0 when the walk is complete).
local function sched_repair(keys, args)
  local base = keys[1]
  local cursor, count = tonumber(args[1]), tonumber(args[2])
  local ids = redis.call('ZRANGE', base .. 'schedulers', cursor, cursor + count - 1)
  local now = now_ms()
  for _, sid in ipairs(ids) do
    local nx = redis.call('HGET', sched_key(base, sid), 'nx')
    if nx and nx ~= '' then
      local id = 'repeat:' .. sid .. ':' .. nx
      if redis.call('EXISTS', base .. 'j:' .. id) == 0 then sched_activated(base, id, now) end
    end
  end
  if #ids < count then return 0 end
  return cursor + count
end

-- sched_remove(id): deletes a scheduler and its pending iteration; 1 removed, 0 unknown.
local function sched_remove(keys, args)
  local base = keys[1]
  local sid = args[1]
  local h = sched_read(base, sid)
  if not h then return 0 end
  sched_drop_pending(base, sid, h)
  redis.call('DEL', sched_key(base, sid))
  redis.call('ZREM', base .. 'schedulers', sid)
  redis.call('ZREM', base .. 'sched-todo', sid)
  return 1
end

-- sched_list(): {id, every ms, cron, tz, start ms, end ms, limit, template, count, next slot ms}
-- per scheduler, oldest first.
local function sched_list(keys, args)
  local base = keys[1]
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', base .. 'schedulers', 0, -1)) do
    local h = sched_read(base, sid)
    if h then out[#out + 1] = {sid, h.ev, h.cr, h.tz, h.st, h.en, h.lm, h.jb, h.c, h.nx} end
  end
  return out
end

-- Deletes up to `limit` schedulers of a queue being obliterated; returns how many are left.
local function drop_schedulers(base, limit)
  local key = base .. 'schedulers'
  local ids = redis.call('ZRANGE', key, 0, limit - 1)
  for _, sid in ipairs(ids) do redis.call('DEL', sched_key(base, sid)) end
  if #ids > 0 then redis.call('ZREM', key, unpack(ids)) end
  local left = redis.call('ZCARD', key)
  if left == 0 then redis.call('DEL', base .. 'sched-todo') end
  return left
end

-- obliterate(force, limit): deletes up to limit jobs per call; returns the number of jobs
-- left (0: the queue is gone), or -1 when active jobs block it.
local function obliterate(keys, args)
  local base = keys[1]
  if args[1] ~= '1' and active_count(base) > 0 then return -1 end
  local budget = tonumber(args[2])
  for _, set in ipairs({'wait', 'prio', 'delayed', 'active', 'completed', 'failed', 'waiting-children'}) do
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
      for _, member in ipairs(ids) do
        if member ~= ACTIVE_ANCHOR then delete_job(base, set == 'active' and lease_id(member) or member) end
      end
      budget = budget - #ids
    end
  end
  local left = 0
  for _, set in ipairs({'prio', 'delayed', 'active', 'completed', 'failed', 'waiting-children'}) do
    left = left + redis.call('ZCARD', base .. set)
  end
  left = left + redis.call('LLEN', base .. 'wait') + drop_schedulers(base, 1000)
  if left == 0 then
    redis.call('DEL', base .. 'meta', base .. 'id', base .. 'seq', base .. 'events', base .. 'marker',
      base .. 'limiter', base .. 'dlq', base .. 'ob', base .. 'obv', base .. 'metrics')  -- flow_ outbox
  end
  return left
end

-- set_limits(kind, ...): 'rate' max ms | 'concurrency' n; no value removes the limit.
local function set_limits(keys, args)
  local base = keys[1]
  if args[1] == 'rate' then
    if args[2] then
      redis.call('HSET', base .. 'meta', 'rlm', args[2], 'rld', args[3])
    else
      redis.call('HDEL', base .. 'meta', 'rlm', 'rld')
    end
    redis.call('DEL', base .. 'limiter')
  elseif args[2] then
    redis.call('HSET', base .. 'meta', 'gc', args[2])
  else
    redis.call('HDEL', base .. 'meta', 'gc')
  end
  wake(base)
  return 1
end

-- dead_letters(limit): the oldest entries of the dead-letter outbox (msgpack each).
local function dead_letters_of(keys, args)
  return redis.call('LRANGE', keys[1] .. 'dlq', 0, tonumber(args[1]) - 1)
end

-- ack_dead_letters(entry...): drops entries copied to the dead-letter queue.
local function ack_dead_letters(keys, args)
  local n = 0
  for _, entry in ipairs(args) do n = n + redis.call('LREM', keys[1] .. 'dlq', 1, entry) end
  return n
end

-- Flows: writing trees, delivering children's outcomes to their parents ----------------

-- The last pending child is in: the parent goes to waiting (or delayed, by its own delay).
local function flow_release(base, id, now)
  local jk = base .. 'j:' .. id
  redis.call('ZREM', base .. 'waiting-children', id)
  local f = redis.call('HMGET', jk, 'p', 'lf', 'dl')
  place(base, id, tonumber(f[1] or '0'), f[2] == '1', tonumber(f[3] or '0'), now)
end

-- One child of a parent in 'waiting-children' is done; a failed one fails the parent unless
-- the parent ignores failures ('ic'). Idempotent: a child counts once.
local function flow_child_done(base, id, ckey, failed, reason, now)
  local pend = base .. 'pend:' .. id
  if redis.call('SREM', pend, ckey) == 0 then return end
  local jk = base .. 'j:' .. id
  if failed and redis.call('HGET', jk, 'ic') ~= '1' then
    redis.call('ZREM', base .. 'waiting-children', id)
    redis.call('DEL', pend)
    local f = redis.call('HMGET', jk, 'am', 'rf')
    fail_for_good(base, id, f[1] or '0', 'child ' .. ckey .. ' failed: ' .. reason, '',
      tonumber(f[2] or '-1'), tostring(now))
  elseif redis.call('SCARD', pend) == 0 then
    flow_release(base, id, now)
  end
end

-- A new parent: its pending children, then the children that finished before it was written
-- (their queue was written first and they ran at once).
local function flow_wait_children(base, id, j, now)
  local pend = base .. 'pend:' .. id
  for i = 14, #j, 1000 do redis.call('SADD', pend, unpack(j, i, math.min(i + 999, #j))) end
  redis.call('ZADD', base .. 'waiting-children', seq(base), id)  -- in the order written
  emit(base, 'waiting-children', id)
  local early = base .. 'pre:' .. id
  if redis.call('EXISTS', early) == 0 then return end
  redis.call('PERSIST', base .. 'cv:' .. id)
  redis.call('PERSIST', base .. 'cf:' .. id)
  for _, ckey in ipairs(redis.call('SMEMBERS', early)) do
    local reason = redis.call('HGET', base .. 'cf:' .. id, ckey)
    flow_child_done(base, id, ckey, reason ~= false, reason or '', now)
  end
  redis.call('DEL', early)
end

-- An existing job named as a child keeps its state; a job without a parent is adopted
-- (and reports at once if it already finished), one with another parent is refused.
local function flow_adopt(base, id, parent)
  local jk = base .. 'j:' .. id
  local f = redis.call('HMGET', jk, 'pp', 's', 'rv', 'fr')
  if f[1] == parent then return end
  if f[1] then
    flow_outbox_push(base, parent, flow_child_key(base, id), 'f', 'job ' .. id .. ' already has another parent')
    return
  end
  redis.call('HSET', jk, 'pp', parent)
  redis.call('HSET', base .. 'meta', 'fc', '1')
  has_children = true
  if f[2] == 'completed' then flow_notify(base, id, 'c', f[3] or '') end
  if f[2] == 'failed' then flow_notify(base, id, 'f', f[4] or '') end
end

-- flow_add(jobs): writes the jobs of one or more trees that live in this queue, in one call.
-- `jobs` is a msgpack array of {id, name, data, delay_ms, priority, attempts, backoff,
-- timeout_ms, lifo, rc, rf, parent (parent base .. parent id, or ''), ignore child failures
-- ('1'/'0'), child key...}, numbers as decimal strings. A job whose id exists is left as it is.
-- Returns {now, notifications written, created (1/0) per job}.
local function flow_add(keys, args)
  local base = keys[1]
  local now = now_ms()
  local now_s = digits(now)
  local created = {}
  for i, j in ipairs(cmsgpack.unpack(args[1])) do
    local id = j[1]
    local jk = base .. 'j:' .. id
    created[i] = 0
    if redis.call('EXISTS', jk) == 0 then
      created[i] = 1
      local delay, parent = tonumber(j[4]), j[12]
      local state = 'waiting'
      if #j > 13 then state = 'waiting-children' elseif delay > 0 then state = 'delayed' end
      local fields = job_fields(j, now_s, state)
      if parent ~= '' then
        fields[#fields + 1] = 'pp'
        fields[#fields + 1] = parent
        redis.call('HSET', base .. 'meta', 'fc', '1')
        has_children = true
      end
      if j[13] == '1' then
        fields[#fields + 1] = 'ic'
        fields[#fields + 1] = '1'
      end
      redis.call('HSET', jk, unpack(fields))
      emit(base, 'added', id, j[2])
      if #j > 13 then
        flow_wait_children(base, id, j, now)
      elseif delay > 0 then
        schedule(base, id, now + delay)
        emit(base, 'delayed', id, now + delay)
      else
        enqueue(base, id, tonumber(j[5]), j[9] == '1')
      end
    elseif j[12] ~= '' then
      flow_adopt(base, id, j[12])
    end
  end
  wake(base)
  local out = {now, outbox_added}
  for _, c in ipairs(created) do out[#out + 1] = c end
  return out
end

-- flow_deliver(entry...): records children's outcomes at their parents in this queue; each
-- entry is an outbox entry {parent base, parent id, child key, kind, payload}. Idempotent.
-- Returns how many notifications it wrote to this queue's outbox (failed parents' parents).
local function flow_deliver(keys, args)
  local base = keys[1]
  local now = now_ms()
  for _, blob in ipairs(args) do
    local e = cmsgpack.unpack(blob)
    local id, ckey, kind, payload = e[2], e[3], e[4], e[5]
    local cv, cf = base .. 'cv:' .. id, base .. 'cf:' .. id
    if kind == 'c' then
      redis.call('HSET', cv, ckey, payload)
      redis.call('HDEL', cf, ckey)
    elseif kind == 'f' then
      redis.call('HSET', cf, ckey, payload)
      redis.call('HDEL', cv, ckey)
    end
    local state = redis.call('HGET', base .. 'j:' .. id, 's')
    if not state then
      -- the parent's queue is written after the child's (or the parent was removed): kept
      -- for a while, for the parent to find when it is written
      local early = base .. 'pre:' .. id
      redis.call('SADD', early, ckey)
      for _, key in ipairs({early, cv, cf}) do redis.call('EXPIRE', key, FLOW_EARLY_TTL) end
    elseif state == 'waiting-children' then
      flow_child_done(base, id, ckey, kind == 'f', payload, now)
    end
  end
  return outbox_added
end

-- flow_claim(claim_ms, limit): outbox entries due for delivery, claimed for claim_ms.
-- Returns {entry id, entry} * n.
local function flow_claim(keys, args)
  local base = keys[1]
  local now = now_ms()
  local ids = redis.call('ZRANGEBYSCORE', base .. 'ob', '-inf', now, 'LIMIT', 0, tonumber(args[2]))
  local out = {}
  if #ids == 0 then return out end
  local blobs = call_all('HMGET', base .. 'obv', ids)
  local due = tostring(now + tonumber(args[1]))
  local scores = {}
  for i, eid in ipairs(ids) do
    if blobs[i] then
      out[#out + 1] = eid
      out[#out + 1] = blobs[i]
      scores[#scores + 1] = due
      scores[#scores + 1] = eid
    else
      redis.call('ZREM', base .. 'ob', eid)
    end
  end
  if #scores > 0 then call_all('ZADD', base .. 'ob', scores) end
  return out
end

-- flow_ack(entry id...): drops delivered outbox entries.
local function flow_ack(keys, args)
  local base = keys[1]
  call_all('ZREM', base .. 'ob', args)
  return call_all('HDEL', base .. 'obv', args)
end

-- flow_children(id): {return values, failure reasons} of a parent's children, as flat hashes.
local function flow_children(keys, args)
  local base = keys[1]
  return {redis.call('HGETALL', base .. 'cv:' .. args[1]), redis.call('HGETALL', base .. 'cf:' .. args[1])}
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
  for _, info in ipairs(call_all('HMGET', base .. 'info', ids)) do
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
    dead_letters = false
    dedup_used = true
    flow_begin()
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
reg('release_claim', release_claim)
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
reg('set_limits', set_limits)
reg('dead_letters', dead_letters_of, ro)
reg('ack_dead_letters', ack_dead_letters)
reg('sched_upsert', sched_upsert)
reg('sched_next', sched_next)
reg('sched_claim', sched_claim)
reg('sched_remove', sched_remove)
reg('sched_repair', sched_repair)
reg('sched_list', sched_list, ro)
reg('flow_add', flow_add)
reg('flow_deliver', flow_deliver)
reg('flow_claim', flow_claim)
reg('flow_ack', flow_ack)
reg('flow_children', flow_children, ro)
reg('worker_beat', worker_beat)
reg('worker_leave', worker_leave)
reg('workers', workers)
reg('metrics', metrics, ro)
