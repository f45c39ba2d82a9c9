//! Refuses, before anything is written, a `trim_policy` the server cannot
//! honour: it has no KEEPREF | DELREF | ACKED (docs/event-sourcing.md,
//! "Safe trimming"). The feature probe sends the option itself; the version
//! string decides nothing.

use crate::error::{Error, Result};
use crate::metrics::{ServerInfo, StreamFeature};
use crate::plan::Plan;

pub(super) fn check_server(plan: &Plan, server: &ServerInfo, url: &str) -> Result<()> {
    let feature = StreamFeature::TrimPolicy;
    let scenario = &plan.scenario;
    let Some((i, st)) = (scenario.streams.iter().enumerate())
        .find(|(_, st)| st.trim_policy.is_some() && (st.maxlen.is_some() || st.minid.is_some()))
    else {
        return Ok(());
    };
    if server.has(feature) {
        return Ok(());
    }
    let policy = st.trim_policy.map_or("", |p| p.name());
    Err(Error::ServerLacks {
        url: url.to_string(),
        server: server.label(),
        problem: format!(
            "scenario `{}`'s `streams[{i}].trim_policy = \"{policy}\"` (stream `{}`) needs {}, \
             which this server refused when tried: run it on a server that has them, e.g. \
             `--server .servers/redis-8.2.3/redis-server` (scripts/fetch-servers fetches it), \
             or remove `trim_policy`",
            scenario.name,
            st.key,
            feature.describe(),
        ),
    })
}
