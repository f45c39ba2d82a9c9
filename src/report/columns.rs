//! The column names of `timeseries.csv`, spelled once: `files` writes its
//! header from them, and `plot`, `html` and `compare` find their columns by
//! them when they read a run back (docs/reports.md lists the columns). A
//! name changed here changes the file's format for other tools too.

/// Seconds since the run's start; every row's time.
pub const T_S: &str = "t_s";
/// Empty after the schedule ends.
pub const TARGET_RATE_PER_S: &str = "target_rate_per_s";
pub const SENT: &str = "sent";
/// By reply time.
pub const ACKED: &str = "acked";
pub const ERRORS: &str = "errors";
pub const PRODUCE_P50_US: &str = "produce_p50_us";
pub const PRODUCE_P99_US: &str = "produce_p99_us";
/// Redis's, from the sampler (empty when it could not read it).
pub const USED_MEMORY_BYTES: &str = "used_memory_bytes";
pub const OPS_PER_SEC: &str = "ops_per_sec";

/// The producers' columns, first in every row.
pub const PRODUCE: [&str; 7] = [
    T_S,
    TARGET_RATE_PER_S,
    SENT,
    ACKED,
    ERRORS,
    PRODUCE_P50_US,
    PRODUCE_P99_US,
];

/// The server-wide columns, last in every row.
pub const SERVER: [&str; 2] = [USED_MEMORY_BYTES, OPS_PER_SEC];

/// The latency percentiles the CSV holds per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantile {
    P50,
    P99,
}

impl Quantile {
    /// As column names and chart legends spell it.
    pub fn label(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P99 => "p99",
        }
    }
}

/// The column of the producers' latency at `q`.
pub fn produce_latency_us(q: Quantile) -> &'static str {
    match q {
        Quantile::P50 => PRODUCE_P50_US,
        Quantile::P99 => PRODUCE_P99_US,
    }
}

/// What each consumer group has a column of, named `<group>.<column>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupColumn {
    Processed,
    E2eUs(Quantile),
    /// Lag and pending come from the sampler (empty when it could not read them).
    Lag,
    Pending,
}

impl GroupColumn {
    /// A group's columns in the CSV's order.
    pub const ALL: [GroupColumn; 5] = [
        GroupColumn::Processed,
        GroupColumn::E2eUs(Quantile::P50),
        GroupColumn::E2eUs(Quantile::P99),
        GroupColumn::Lag,
        GroupColumn::Pending,
    ];

    fn suffix(self) -> &'static str {
        match self {
            GroupColumn::Processed => "processed",
            GroupColumn::E2eUs(Quantile::P50) => "e2e_p50_us",
            GroupColumn::E2eUs(Quantile::P99) => "e2e_p99_us",
            GroupColumn::Lag => "lag",
            GroupColumn::Pending => "pending",
        }
    }
}

/// `<group>.<column>`: one of a consumer group's columns.
pub fn group(name: &str, column: GroupColumn) -> String {
    format!("{name}.{}", column.suffix())
}

/// `shard<i>.redis_cpu_cores`: in a cluster run, shard i's (slot order)
/// Redis CPU since the previous reading, in cores; after the server-wide
/// columns (docs/cluster.md, "Per-shard Redis CPU").
pub fn shard_cpu_cores(shard: usize) -> String {
    format!("shard{shard}.redis_cpu_cores")
}

/// What follows a stream's key in the name of its length (XLEN) column.
const LENGTH_SUFFIX: &str = ".length";

/// `<key>.length`: a stream's length.
pub fn stream_length(key: &str) -> String {
    format!("{key}{LENGTH_SUFFIX}")
}

/// The stream key of a `<key>.length` column; None for any other column.
pub fn stream_of_length(column: &str) -> Option<&str> {
    column.strip_suffix(LENGTH_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_group_and_per_stream_names_read_back() {
        let names = GroupColumn::ALL.map(|c| group("billing", c));
        assert_eq!(
            names,
            [
                "billing.processed",
                "billing.e2e_p50_us",
                "billing.e2e_p99_us",
                "billing.lag",
                "billing.pending"
            ]
        );
        let length = stream_length("sd:run:orders");
        assert_eq!(stream_of_length(&length), Some("sd:run:orders"));
        assert_eq!(stream_of_length(&names[3]), None);
        assert_eq!(produce_latency_us(Quantile::P99), "produce_p99_us");
    }
}
