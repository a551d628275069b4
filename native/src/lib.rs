//! The outbox's hot path (agents/store/outbox.py) in Rust: one partition's write set into its
//! outbox blob, and a batch's entries into the script calls that apply them. Beside it, Kafka's
//! murmur2 for the misrouting check (streams/wire/partitioning.py).
//!
//! The Python functions there stay the reference: for the same write set this module gives the
//! same bytes, KEYS and ARGV (tests/unit/store/test_native_outbox.py compares them). Everything
//! here follows that source's order: Python dicts are read in insertion order, sets sorted.
//! No msgspec objects are built on the hot path: an entry keeps its parts in Rust.

use std::collections::{BTreeSet, HashMap};

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString};

mod msgpack;

/// Python ints here run from msgspec's least (-2**63) to its greatest (2**64-1): i128 holds both.
type Int = i128;

struct Counters {
    key: String,
    expire_at_ms: Int,
    fields: Vec<(String, Int)>,
}

struct Waiting {
    key: String,
    expire_at_ms: Int,
    removed: Vec<String>,
    added: Vec<(String, Int)>, // buyer -> wait start
}

struct Details {
    key: String,
    expire_at_ms: Int,
    rows: Vec<(String, Vec<u8>)>,
    deleted: Vec<String>,
}

/// One agent's share of one commit (outbox.AgentShare).
#[derive(Default)]
struct Share {
    counters: Vec<Counters>,
    waiting: Vec<Waiting>,
    details: Vec<Details>,
}

/// One partition's outbox entry: what outbox.Outbox holds, and its blob.
#[pyclass(frozen, module = "kefu_native")]
struct NativeEntry {
    #[pyo3(get)]
    partition: Int,
    #[pyo3(get)]
    position: Int,
    #[pyo3(get)]
    blob: Py<PyBytes>,
    agents: Vec<(String, Share)>, // in the order the reference's dict got them
    indexes: Vec<(String, Vec<(String, Int)>)>,
}

/// `key`'s agent prefix, up to and with the tag's closing brace (outbox._agent_of).
fn agent_of(key: &str) -> PyResult<&str> {
    match key.find('}') {
        Some(end) => Ok(&key[..=end]),
        None => Err(PyValueError::new_err(format!("no hash tag in key {key:?}"))),
    }
}

/// Ordered dict items as (str, int) pairs, the zero amounts left out when `nonzero`.
fn int_items(dict: &Bound<'_, PyDict>, nonzero: bool) -> PyResult<Vec<(String, Int)>> {
    let mut items = Vec::with_capacity(dict.len());
    for (name, amount) in dict.iter() {
        let amount: Int = amount.extract()?;
        if !nonzero || amount != 0 {
            items.push((name.extract()?, amount));
        }
    }
    Ok(items)
}

fn expiry(expire_at_ms: &Bound<'_, PyDict>, key: &Bound<'_, PyAny>) -> PyResult<Int> {
    match expire_at_ms.get_item(key)? {
        Some(value) => value.extract(),
        None => Err(PyKeyError::new_err(key.clone().unbind())),
    }
}

/// The agents' shares, keyed by agent in first-seen order (the reference's defaultdict).
#[derive(Default)]
struct Shares {
    agents: Vec<(String, Share)>,
    index: HashMap<String, usize>,
}

impl Shares {
    fn of(&mut self, key: &str) -> PyResult<&mut Share> {
        let agent = agent_of(key)?;
        let at = match self.index.get(agent) {
            Some(&at) => at,
            None => {
                self.index.insert(agent.to_owned(), self.agents.len());
                self.agents.push((agent.to_owned(), Share::default()));
                self.agents.len() - 1
            }
        };
        Ok(&mut self.agents[at].1)
    }
}

/// outbox.from_writes followed by outbox.encode: None when no agent changed and no index moved.
/// `indexes` are the index touches, computed in Python (outbox._index_touches).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn from_writes(
    py: Python<'_>,
    partition: Int,
    at: Int,
    increments: &Bound<'_, PyDict>,
    expire_at_ms: &Bound<'_, PyDict>,
    waits_add: &Bound<'_, PyDict>,
    waits_remove: &Bound<'_, PyDict>,
    details: &Bound<'_, PyDict>,
    indexes: Vec<(String, Bound<'_, PyDict>)>,
) -> PyResult<Option<NativeEntry>> {
    let mut shares = Shares::default();
    for (key, fields) in increments.iter() {
        let fields = int_items(fields.downcast()?, true)?;
        if !fields.is_empty() {
            let expire_at_ms = expiry(expire_at_ms, &key)?;
            let key: String = key.extract()?;
            shares.of(&key)?.counters.push(Counters {
                key,
                expire_at_ms,
                fields,
            });
        }
    }
    // The reference sorts the union of both dicts' keys (a set has no order to copy).
    let mut wait_keys = BTreeSet::new();
    for key in waits_add.keys().iter().chain(waits_remove.keys().iter()) {
        wait_keys.insert(key.extract::<String>()?);
    }
    for key in wait_keys {
        let py_key = PyString::new(py, &key);
        let mut removed = Vec::new();
        if let Some(buyers) = waits_remove.get_item(&py_key)? {
            for buyer in buyers.downcast::<PySet>()?.iter() {
                removed.push(buyer.extract::<String>()?);
            }
            removed.sort();
        }
        let added = match waits_add.get_item(&py_key)? {
            Some(buyers) => int_items(buyers.downcast()?, false)?,
            None => Vec::new(),
        };
        if !removed.is_empty() || !added.is_empty() {
            let expire_at_ms = expiry(expire_at_ms, py_key.as_any())?;
            shares.of(&key)?.waiting.push(Waiting {
                key,
                expire_at_ms,
                removed,
                added,
            });
        }
    }
    for (key, changes) in details.iter() {
        let mut rows = Vec::new();
        let mut deleted = Vec::new();
        for (name, row) in changes.downcast::<PyDict>()?.iter() {
            if row.is_none() {
                deleted.push(name.extract::<String>()?);
            } else {
                rows.push((
                    name.extract()?,
                    row.downcast::<PyBytes>()?.as_bytes().to_vec(),
                ));
            }
        }
        deleted.sort();
        if !rows.is_empty() || !deleted.is_empty() {
            let expire_at_ms = expiry(expire_at_ms, &key)?;
            let key: String = key.extract()?;
            shares.of(&key)?.details.push(Details {
                key,
                expire_at_ms,
                rows,
                deleted,
            });
        }
    }
    let mut touches = Vec::with_capacity(indexes.len());
    for (key, members) in indexes {
        touches.push((key, int_items(&members, false)?));
    }
    if shares.agents.is_empty() && touches.is_empty() {
        return Ok(None);
    }
    let blob = encode_outbox(partition, at, &shares.agents, &touches)?;
    Ok(Some(NativeEntry {
        partition,
        position: at,
        blob: PyBytes::new(py, &blob).unbind(),
        agents: shares.agents,
        indexes: touches,
    }))
}

/// msgspec's encoding of outbox.Outbox: every struct is array_like, so a struct is an array of
/// its fields in declaration order (AgentShare's defaulted `details` included).
fn encode_outbox(
    partition: Int,
    at: Int,
    agents: &[(String, Share)],
    indexes: &[(String, Vec<(String, Int)>)],
) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    msgpack::array(&mut out, 4);
    msgpack::int(&mut out, partition)?;
    msgpack::int(&mut out, at)?;
    msgpack::map(&mut out, agents.len());
    for (agent, share) in agents {
        msgpack::str(&mut out, agent);
        msgpack::array(&mut out, 3);
        msgpack::array(&mut out, share.counters.len());
        for c in &share.counters {
            msgpack::array(&mut out, 3);
            msgpack::str(&mut out, &c.key);
            msgpack::int(&mut out, c.expire_at_ms)?;
            msgpack::int_map(&mut out, &c.fields)?;
        }
        msgpack::array(&mut out, share.waiting.len());
        for w in &share.waiting {
            msgpack::array(&mut out, 4);
            msgpack::str(&mut out, &w.key);
            msgpack::int(&mut out, w.expire_at_ms)?;
            msgpack::str_array(&mut out, &w.removed);
            msgpack::int_map(&mut out, &w.added)?;
        }
        msgpack::array(&mut out, share.details.len());
        for d in &share.details {
            msgpack::array(&mut out, 4);
            msgpack::str(&mut out, &d.key);
            msgpack::int(&mut out, d.expire_at_ms)?;
            msgpack::map(&mut out, d.rows.len());
            for (name, row) in &d.rows {
                msgpack::str(&mut out, name);
                msgpack::bin(&mut out, row);
            }
            msgpack::str_array(&mut out, &d.deleted);
        }
    }
    msgpack::array(&mut out, indexes.len());
    for (key, members) in indexes {
        msgpack::array(&mut out, 2);
        msgpack::str(&mut out, key);
        msgpack::int_map(&mut out, members)?;
    }
    Ok(out)
}

/// A map that keeps its keys' first-insertion order, as a Python dict does.
struct Ordered<'a, V> {
    items: Vec<(&'a str, V)>,
    at: HashMap<&'a str, usize>,
}

impl<'a, V> Default for Ordered<'a, V> {
    fn default() -> Self {
        Ordered {
            items: Vec::new(),
            at: HashMap::new(),
        }
    }
}

impl<'a, V> Ordered<'a, V> {
    fn get_or_insert(&mut self, key: &'a str, value: V) -> &mut V {
        let items = &mut self.items;
        let at = *self.at.entry(key).or_insert_with(|| {
            items.push((key, value));
            items.len() - 1
        });
        &mut items[at].1
    }

    fn get_or_default(&mut self, key: &'a str) -> &mut V
    where
        V: Default,
    {
        match self.at.get(key) {
            Some(&at) => &mut self.items[at].1,
            None => self.get_or_insert(key, V::default()),
        }
    }
}

/// The KEYS and ARGV of one script call, for Python to wrap in a ScriptCall.
type Call = (Py<PyList>, Py<PyList>);

/// outbox.apply_calls: (the agents' apply_agent.lua calls, the indexes' touch_index.lua calls).
/// `marker_ttl_ms` is already raised to the least the markers need (Python does that).
#[pyfunction]
fn apply_calls(
    py: Python<'_>,
    entries: Vec<Bound<'_, NativeEntry>>,
    marker_ttl_ms: Int,
    index_ttl_ms: Int,
) -> PyResult<(Vec<Call>, Vec<Call>)> {
    let mut ordered: Vec<&NativeEntry> = entries.iter().map(|e| e.get()).collect();
    ordered.sort_by_key(|e| (e.partition, e.position)); // stable, as Python's sorted()
    let mut parts: Ordered<Vec<(&NativeEntry, &Share)>> = Ordered::default();
    let mut touched: Ordered<Ordered<Int>> = Ordered::default();
    for entry in &ordered {
        for (agent, share) in &entry.agents {
            parts.get_or_default(agent).push((entry, share));
        }
        for (key, members) in &entry.indexes {
            let kept = touched.get_or_default(key);
            for (member, seen) in members {
                let known = kept.get_or_insert(member, *seen);
                *known = (*known).max(*seen);
            }
        }
    }
    let mut agent_calls = Vec::with_capacity(parts.items.len());
    for (agent, shares) in &parts.items {
        agent_calls.push(agent_call(py, agent, shares, marker_ttl_ms)?);
    }
    let mut index_calls = Vec::with_capacity(touched.items.len());
    for (key, members) in &touched.items {
        let args = PyList::empty(py);
        args.append(index_ttl_ms)?;
        for (member, seen) in &members.items {
            args.append(*seen)?;
            args.append(*member)?;
        }
        index_calls.push((PyList::new(py, [*key])?.unbind(), args.unbind()));
    }
    Ok((agent_calls, index_calls))
}

/// KEYS: the agent's marker hash, then every key the shares write, numbered from 2 as Lua's
/// KEYS[n] (KEYS[1] is the marker). ARGV: the shares' msgpack, the detail rows as blobs (Redis's
/// cmsgpack reads no msgpack bin), the markers' TTL. See apply_agent.lua.
fn agent_call<'a>(
    py: Python<'_>,
    agent: &str,
    shares: &[(&'a NativeEntry, &'a Share)],
    marker_ttl_ms: Int,
) -> PyResult<Call> {
    let mut keys = KeyNumbers::default();
    let mut blobs: Vec<&[u8]> = Vec::new();
    let mut out = Vec::with_capacity(256);
    msgpack::array(&mut out, shares.len());
    for (entry, share) in shares {
        msgpack::array(&mut out, 5);
        msgpack::int(&mut out, entry.partition)?;
        msgpack::int(&mut out, entry.position)?;
        msgpack::array(&mut out, share.counters.len());
        for c in &share.counters {
            msgpack::array(&mut out, 2 + 2 * c.fields.len());
            msgpack::int(&mut out, keys.number(&c.key))?;
            msgpack::int(&mut out, c.expire_at_ms)?;
            for (name, amount) in &c.fields {
                msgpack::str(&mut out, name);
                msgpack::int(&mut out, *amount)?;
            }
        }
        msgpack::array(&mut out, share.waiting.len());
        for w in &share.waiting {
            msgpack::array(&mut out, 4);
            msgpack::int(&mut out, keys.number(&w.key))?;
            msgpack::int(&mut out, w.expire_at_ms)?;
            msgpack::str_array(&mut out, &w.removed);
            msgpack::array(&mut out, 2 * w.added.len());
            for (buyer, start) in &w.added {
                msgpack::int(&mut out, *start)?;
                msgpack::str(&mut out, buyer);
            }
        }
        msgpack::array(&mut out, share.details.len());
        for d in &share.details {
            msgpack::array(&mut out, 4);
            msgpack::int(&mut out, keys.number(&d.key))?;
            msgpack::int(&mut out, d.expire_at_ms)?;
            msgpack::array(&mut out, 2 * d.rows.len());
            for (name, row) in &d.rows {
                blobs.push(row);
                msgpack::str(&mut out, name);
                msgpack::int(&mut out, blobs.len() as Int + 1)?; // ARGV[1] is the msgpack
            }
            msgpack::str_array(&mut out, &d.deleted);
        }
    }
    let marker = format!("{}:a", agent_of(agent)?);
    let key_list = PyList::empty(py);
    key_list.append(marker)?;
    for key in keys.keys {
        key_list.append(key)?;
    }
    let args = PyList::empty(py);
    args.append(PyBytes::new(py, &out))?;
    for blob in blobs {
        args.append(PyBytes::new(py, blob))?;
    }
    args.append(marker_ttl_ms)?;
    Ok((key_list.unbind(), args.unbind()))
}

/// The keys of one agent's call, each numbered once as Lua's KEYS[n] (KEYS[1] is the marker).
#[derive(Default)]
struct KeyNumbers<'a> {
    keys: Vec<&'a str>,
    number_of: HashMap<&'a str, usize>,
}

impl<'a> KeyNumbers<'a> {
    fn number(&mut self, key: &'a str) -> Int {
        let keys = &mut self.keys;
        *self.number_of.entry(key).or_insert_with(|| {
            keys.push(key);
            keys.len() + 1
        }) as Int
    }
}

/// Kafka's murmur2 of a record key (org.apache.kafka.common.utils.Utils.murmur2), as an unsigned
/// 32-bit number: kafka-python's `murmur2` gives the same (streams/wire/partitioning.py checks a
/// record's partition with it, for every new key of a batch).
#[pyfunction]
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[pymodule]
fn kefu_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeEntry>()?;
    module.add_function(wrap_pyfunction!(from_writes, module)?)?;
    module.add_function(wrap_pyfunction!(apply_calls, module)?)?;
    module.add_function(wrap_pyfunction!(murmur2, module)?)?;
    Ok(())
}
