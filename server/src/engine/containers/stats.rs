//! `docker stats`: a container's usage (summed over its processes, see
//! `sandbox::ContainerUsage`) in Docker's JSON shape: once (`stream=false`,
//! two samples apart so the CPU share covers that time; `one-shot=true`,
//! one sample) or every second (`stream=true`) until the container stops or
//! the client goes away. A stopped container answers zeros, as Docker's.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use super::flag;
use super::records::Record;
use crate::engine::ctx::Ctx;
use crate::engine::reply::{json_lines, Reply};

/// Between the two samples of a one-time answer.
const ONE_TIME_SPAN: Duration = Duration::from_millis(500);
/// Between the answers of a stream (Docker's).
const STREAM_PERIOD: Duration = Duration::from_secs(1);
/// Before the first answer of a stream, so its CPU share means something.
const STREAM_WARM_UP: Duration = Duration::from_millis(100);

struct Sample {
    read: SystemTime,
    usage: sandbox::ContainerUsage,
    system: sandbox::SystemCpu,
}

/// A sample of the container, `None` when it does not run.
fn sample(ctx: &Ctx, r: &Record) -> Option<Sample> {
    if !r.running {
        return None;
    }
    let system = sandbox::system_cpu().ok()?;
    let usage = ctx.sandbox.container_usage(r.pid)?;
    Some(Sample {
        read: SystemTime::now(),
        usage,
        system,
    })
}

/// GET /containers/{id}/stats
pub async fn stats(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    let stream = query.get("stream").is_none_or(|_| flag(query, "stream"));
    if !stream {
        let previous = match flag(query, "one-shot") {
            true => None,
            false => {
                let first = sample(ctx, &record);
                tokio::time::sleep(ONE_TIME_SPAN).await;
                first
            }
        };
        let record = ctx.engine.containers.find(&ctx.instance, &record.id)?;
        let current = sample(ctx, &record);
        return Ok(
            Json(to_json(ctx, &record, current.as_ref(), previous.as_ref())).into_response(),
        );
    }
    let state = Streamed {
        ctx: ctx.clone(),
        id: record.id,
        previous: None,
        done: false,
    };
    let answers = futures_util::stream::unfold(state, |mut state| async move {
        let answer = state.next().await?;
        Some((answer, state))
    });
    Ok(json_lines(answers))
}

/// A stream's state: the sample the next answer compares with.
struct Streamed {
    ctx: Ctx,
    id: String,
    previous: Option<Sample>,
    done: bool,
}

impl Streamed {
    async fn next(&mut self) -> Option<Value> {
        if self.done {
            return None;
        }
        let find = |ctx: &Ctx, id: &str| ctx.engine.containers.find(&ctx.instance, id).ok();
        if self.previous.is_none() {
            let record = find(&self.ctx, &self.id)?;
            self.previous = sample(&self.ctx, &record);
            if self.previous.is_none() {
                // Not running: zeros, once.
                self.done = true;
                return Some(to_json(&self.ctx, &record, None, None));
            }
            tokio::time::sleep(STREAM_WARM_UP).await;
        } else {
            tokio::time::sleep(STREAM_PERIOD).await;
        }
        let record = find(&self.ctx, &self.id)?;
        let current = sample(&self.ctx, &record)?;
        let answer = to_json(&self.ctx, &record, Some(&current), self.previous.as_ref());
        self.previous = Some(current);
        Some(answer)
    }
}

fn rfc3339(time: Option<SystemTime>) -> String {
    match time {
        Some(t) => humantime::format_rfc3339_nanos(t).to_string(),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn cpu_json(sample: Option<&Sample>) -> Value {
    let Some(s) = sample else {
        return json!({ "cpu_usage": { "total_usage": 0 }, "throttling_data": {} });
    };
    json!({
        "cpu_usage": { "total_usage": s.usage.cpu_ns },
        "system_cpu_usage": s.system.total_ns,
        "online_cpus": s.system.online_cpus,
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

/// Docker's `StatsJSON`; `previous` fills `precpu_stats`.
fn to_json(ctx: &Ctx, r: &Record, current: Option<&Sample>, previous: Option<&Sample>) -> Value {
    let mut answer = json!({
        "name": format!("/{}", r.name),
        "id": r.id,
        "read": rfc3339(current.map(|s| s.read)),
        "preread": rfc3339(previous.map(|s| s.read)),
        "cpu_stats": cpu_json(current),
        "precpu_stats": cpu_json(previous),
        "pids_stats": {},
        "blkio_stats": {},
        "memory_stats": {},
        "num_procs": 0,
        "storage_stats": {},
    });
    let Some(s) = current else {
        return answer;
    };
    let u = &s.usage;
    answer["pids_stats"] = json!({ "current": u.tasks });
    answer["memory_stats"] = json!({
        "usage": u.memory_bytes,
        "limit": ctx.sandbox.memory_limit(),
        "stats": { "rss": u.rss_bytes, "total_rss": u.rss_bytes },
    });
    let io = |op: &str, value: u64| json!({ "major": 0, "minor": 0, "op": op, "value": value });
    answer["blkio_stats"] = json!({ "io_service_bytes_recursive": [
        io("Read", u.read_bytes),
        io("Write", u.write_bytes),
        io("Total", u.read_bytes + u.write_bytes),
    ]});
    // On the instance's network (`--network host`) Docker shows none.
    if r.config.network_mode != "host" {
        let networks: Map<String, Value> = u
            .interfaces
            .iter()
            .filter(|i| i.name != "lo")
            .map(|i| {
                let counters = json!({
                    "rx_bytes": i.rx_bytes, "rx_packets": i.rx_packets,
                    "rx_errors": i.rx_errors, "rx_dropped": i.rx_dropped,
                    "tx_bytes": i.tx_bytes, "tx_packets": i.tx_packets,
                    "tx_errors": i.tx_errors, "tx_dropped": i.tx_dropped,
                });
                (i.name.clone(), counters)
            })
            .collect();
        answer["networks"] = Value::Object(networks);
    }
    answer
}
