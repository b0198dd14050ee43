//! The Lua scripts: each runs atomically in Redis, which is what makes IDs totally
//! ordered per company, resume checks consistent with the data they return, and
//! connection counts exact across hosts.

use redis::Script;

/// Helpers shared by the scripts. IDs are compared as (ms, seq) numbers; ms values fit
/// a Lua double exactly.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function id_str(ms, seq) return string.format('%.0f-%.0f', ms, seq) end
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
local function less(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function meta(key)
  local m = redis.call('HMGET', key, 'floor', 'last')
  if not m[1] then
    local id = id_str(now_ms(), 0)
    redis.call('HSET', key, 'floor', id, 'last', id)
    return {id, id}
  end
  return m
end
"#;

/// Publishes a batch for one company. KEYS: meta, the idempotency key's record, the
/// company's index of records, its publish-rate bucket, then one stream per channel.
/// ARGV: maxlen, max age in ms (0: none), the key's TTL in ms (0: no key), the body's
/// digest, records kept per company, the rate in events/s (0: not metered here), the
/// burst, the channel to announce the publish on (empty: none; announced readers wait
/// on it, the message is the meta key), then (stream index, type, data) per event. Returns {'ok', ids...},
/// {'replay', ids...} (the key was recorded for the same digest: nothing stored, no rate
/// spent), {'reused'} (recorded for another digest) or {'rate_limited'} (the company's
/// bucket, shared by every host, holds fewer tokens than the batch has events). The record is written in the same script
/// as the events, so no crash can leave events stored without it (or the reverse); past
/// the cap, the company's oldest records go first.
/// IDs continue the company's last ID, so they are ordered across all of its channels,
/// and stay above every ID a stream has generated: an entry another client of the same
/// Redis added (same millisecond, or even the future) cannot make XADD refuse ours. The
/// check comes first, not as a retry on XADD's error, because a script that fails
/// halfway keeps what it wrote: a batch must be stored whole or not at all.
/// Trimming is approximate (whole radix nodes), as XADD does.
const PUBLISH: &str = r#"
local key_ttl = tonumber(ARGV[3])
if key_ttl > 0 then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    -- '<digest> <first id> <count>': a batch's IDs are consecutive (below), so the
    -- record stays small however big the batch.
    local digest, first, count = string.match(seen, '^(%S+) (%S+) (%d+)$')
    if digest ~= ARGV[4] then return {'reused'} end
    local fms, fseq = parse(first)
    -- A write, so that a WAIT after this reply (on whatever connection) waits until the
    -- replicas have everything up to here, the first publish's events included.
    redis.call('PEXPIRE', KEYS[2], key_ttl)
    local out = {'replay'}
    for i = 0, tonumber(count) - 1 do out[#out + 1] = id_str(fms, fseq + i) end
    return out
  end
end
local now = now_ms()
local rate = tonumber(ARGV[6])
if rate > 0 then
  local burst = tonumber(ARGV[7])
  local n = (#ARGV - 8) / 3
  local now_s = now / 1000
  local b = redis.call('HMGET', KEYS[4], 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now_s
  tokens = math.min(burst, tokens + math.max(0, now_s - at) * rate)
  if tokens < n then return {'rate_limited'} end
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - n), 'at', tostring(now_s))
  redis.call('EXPIRE', KEYS[4], math.min(math.ceil(burst / rate) + 1, 31536000))
end
local m = meta(KEYS[1])
local lms, lseq = parse(m[2])
for k = 5, #KEYS do
  local info = redis.pcall('XINFO', 'STREAM', KEYS[k])
  if type(info) == 'table' and not info['err'] then
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then
        local tms, tseq = parse(info[j + 1])
        if tms and (tms > lms or (tms == lms and tseq > lseq)) then lms = tms; lseq = tseq end
      end
    end
  end
end
local maxlen = tonumber(ARGV[1])
local age = tonumber(ARGV[2])
local ids = {}
for i = 9, #ARGV, 3 do
  -- One batch shares a millisecond and counts up its sequence: its IDs are consecutive
  -- (the idempotency record keeps only the first and the count).
  if now > lms then lms = now; lseq = 0 else lseq = lseq + 1 end
  local id = id_str(lms, lseq)
  local key = KEYS[tonumber(ARGV[i]) + 5]
  if maxlen == 0 then
    redis.call('XADD', key, 'MAXLEN', 0, id, 't', ARGV[i + 1], 'd', ARGV[i + 2])
  else
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, id, 't', ARGV[i + 1], 'd', ARGV[i + 2])
  end
  ids[#ids + 1] = id
end
if age > 0 and now > age then
  for k = 5, #KEYS do redis.call('XTRIM', KEYS[k], 'MINID', '~', id_str(now - age, 0)) end
end
redis.call('HSET', KEYS[1], 'last', ids[#ids])
if key_ttl > 0 then
  -- Room is made before the new record goes in, so the cap never evicts the record
  -- this publish writes (scores can tie within a millisecond, or go back on failover).
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - key_ttl)
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[5]) + 1
  if over > 0 then
    local oldest = redis.call('ZPOPMIN', KEYS[3], over)
    for j = 1, #oldest, 2 do redis.call('DEL', oldest[j]) end
  end
  redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. ids[1] .. ' ' .. #ids, 'PX', key_ttl)
  redis.call('ZADD', KEYS[3], now, KEYS[2])
  redis.call('PEXPIRE', KEYS[3], key_ttl)
end
-- pcall: the events are stored; an announcement refused (a Redis user whose ACL lacks
-- the channel) must not turn a stored publish into an error. Announced readers then find
-- the events at their next sweep; blocking readers never needed it.
if ARGV[8] ~= '' then redis.pcall('PUBLISH', ARGV[8], KEYS[1]) end
local out = {'ok'}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
"#;

/// Checks a cursor. KEYS: meta, then the channel streams. ARGV: cursor ('' = the head).
/// Returns {status, head}: ok, too_old (history trimmed past the cursor, or from before
/// this Redis dataset) or unknown_id (after the head). It runs in one MULTI with the
/// XRANGEs that read the replay, so the check and the data are one consistent view (and
/// Redis, not Lua, encodes the entries). A trimmed stream keeps no record of the highest
/// ID it dropped (`max-deleted-entry-id` moves only on XDEL), so a cursor before its first
/// entry counts as a gap: clients that missed fewer events of a channel than the history
/// size always replay exactly.
const CHECK: &str = r#"
local m = meta(KEYS[1])
local cursor = ARGV[1]
if cursor == '' then return {'ok', m[2]} end
if less(m[2], cursor) then return {'unknown_id', m[2]} end
if less(cursor, m[1]) then return {'too_old', m[2]} end
for k = 2, #KEYS do
  local info = redis.pcall('XINFO', 'STREAM', KEYS[k])
  if type(info) == 'table' and not info['err'] then
    local f = {}
    for j = 1, #info, 2 do f[info[j]] = info[j + 1] end
    if tonumber(f['entries-added']) > tonumber(f['length']) then
      local first = f['last-generated-id']
      if tonumber(f['length']) > 0 then first = f['recorded-first-entry-id'] or f['first-entry'][1] end
      if less(cursor, first) then return {'too_old', m[2]} end
    end
  end
end
return {'ok', m[2]}
"#;

/// Takes a cluster-wide connection slot. KEYS: the company's conns hash, which holds
/// each node's count (field `<node>`) and lease expiry in Redis time (field `~<node>`,
/// milliseconds): everything in the company's slot, so the script runs on a Redis
/// Cluster too. ARGV: this node, the limit, the lease TTL (ms). Counts of nodes whose
/// lease ran out are dropped first, so a crashed node's slots come back after one TTL.
/// Sent as EVAL in the lease task's pipelines (a pipeline cannot reload a script by SHA).
pub(crate) const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local map = {}
for i = 1, #fields, 2 do map[fields[i]] = fields[i + 1] end
local total = 0
for field, value in pairs(map) do
  if string.sub(field, 1, 1) ~= '~' then
    local expiry = tonumber(map['~' .. field] or '0')
    if field ~= ARGV[1] and expiry < now then
      redis.call('HDEL', KEYS[1], field, '~' .. field)
    else
      total = total + tonumber(value)
    end
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], '~' .. ARGV[1], now + tonumber(ARGV[3]))
return 1
"#;

/// Renews this node's lease in one company's conns hash and sets its count. KEYS: the
/// conns hash. ARGV: this node, its count, the lease TTL (ms).
pub(crate) const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '~' .. ARGV[1], now + tonumber(ARGV[3]))
return 1
"#;

/// The compiled scripts (sent by SHA; reloaded transparently after a Redis restart).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) publish: Script,
    pub(crate) check: Script,
    /// The sources, for `EVAL` where a Redis does not know a script (restarted, or a
    /// replica promoted since: scripts are not replicated).
    pub(crate) publish_source: String,
    pub(crate) check_source: String,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let (publish_source, check_source) = (format!("{PRELUDE}{PUBLISH}"), format!("{PRELUDE}{CHECK}"));
        Self {
            publish: Script::new(&publish_source),
            check: Script::new(&check_source),
            publish_source,
            check_source,
        }
    }
}
