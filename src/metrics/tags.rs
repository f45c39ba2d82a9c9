//! The names of the measured histograms, spelled once: the tags of the
//! interval logs `Series` keeps (written as `histograms/<tag>.hlog`) and the
//! keys of summary.json's `histograms`, which the `.hgrm` files, plots and
//! comparisons look up (docs/reports.md lists them).

/// Intended send time to XADD reply.
pub const PRODUCE_LATENCY: &str = "produce.latency";
/// Actual send time to XADD reply.
pub const PRODUCE_SERVICE: &str = "produce.service";
pub const PRODUCE_SCHEDULE_LAG: &str = "produce.schedule_lag";

/// A group's end-to-end latency: `e2e.<group>`.
pub fn e2e(group: &str) -> String {
    format!("e2e.{}", safe(group))
}

/// A group's produce-to-delivery latency: `delivery.<group>`.
pub fn delivery(group: &str) -> String {
    format!("delivery.{}", safe(group))
}

/// A group's redelivery latency (whole run): `redelivery.<group>`.
pub fn redelivery(group: &str) -> String {
    format!("redelivery.{}", safe(group))
}

/// A group's projection write round trip: `projection.<group>`.
pub fn projection(group: &str) -> String {
    format!("projection.{}", safe(group))
}

/// A group name made safe for an interval-log tag and a file name.
fn safe(group: &str) -> String {
    group
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
            true => c,
            false => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_become_safe_tags() {
        assert_eq!(e2e("orders/billing v2,x"), "e2e.orders_billing_v2_x");
        assert_eq!(delivery("g"), "delivery.g");
        assert_eq!(redelivery("g-1.a"), "redelivery.g-1.a");
    }
}
