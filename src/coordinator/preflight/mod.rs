//! The preflight: before anything is written and before the run clock
//! starts, the server must accept every command the run will send (`needs`),
//! with the run's own keys as arguments; or the run does not start, and the
//! error names each refused command, what it is for, the server's words and
//! the fix (docs/acl.md, "The preflight").
//!
//! How: on a connection of its own, MULTI, then every command, then DISCARD.
//! Redis judges a command when it queues it: the user's ACL (the command and
//! its keys) and refusals of its own (DEBUG while `enable-debug-command` is
//! off, a command it does not have) answer with the error the command would
//! get, the rest answer QUEUED, and DISCARD runs none of them. ACL DRYRUN
//! would judge the ACL only, and is itself an admin command a restricted
//! user may not run. MULTI goes alone, in a round trip of its own: were it
//! refused, the commands after it would run. EXEC cannot be queued, so an
//! empty transaction (MULTI EXEC, which runs nothing) tells whether it is
//! allowed. Dropping the connection ends whatever is left open. On a Redis
//! Cluster, whose nodes refuse a transaction over several slots, the same
//! is done node by node, a transaction per slot (`per_slot`).

mod needs;
mod per_slot;

use std::sync::Arc;

use self::needs::Need;
use crate::connect::Target;
use crate::error::{Error, Refusal, Result};
use crate::metrics::StreamFeature;
use crate::plan::{KEY_PREFIX, Plan};
use crate::wire::{Endpoint, Session};

/// What the preflight's own transaction is for, when Redis refuses it.
const OWN: &str = "the preflight, which queues the run's commands in a transaction it discards";

/// Checks that the server at `target` accepts, from its URL's user, every
/// command the run of `plan` will send. Two round trips on a connection of
/// its own, once logged in; nothing is written. A target in a cluster is
/// checked node by node, a transaction per slot (`per_slot`).
pub async fn check(plan: &Plan, target: &Target) -> Result<()> {
    if target.is_cluster() {
        return per_slot::check(plan, target).await;
    }
    let needs = needs::of(plan);
    let url = target.url();
    let endpoint = Arc::new(Endpoint::parse(url, target.tls())?);
    let session = Session::new(endpoint, None, plan.response_timeout());
    let queued: Vec<usize> = (needs.iter().enumerate())
        .filter(|(_, n)| !matches!(n.name().as_str(), "MULTI" | "EXEC"))
        .map(|(i, _)| i)
        .collect();
    let packed: Vec<Vec<u8>> = queued.iter().map(|&i| needs[i].packed.clone()).collect();
    let mut refused = Vec::new();
    let group = Group {
        needs: queued,
        packed,
    };
    transactions(&session, target, &needs, &[group], &mut refused).await?;
    match refused.is_empty() {
        true => Ok(()),
        false => Err(verdict(url, refused)),
    }
}

/// Commands queued in one transaction: each need's index in the run's
/// needs, and the command as sent (a command split per slot is a part of
/// its need).
struct Group {
    needs: Vec<usize>,
    packed: Vec<Vec<u8>>,
}

/// On `session`: MULTI, EXEC, MULTI in a round trip of their own, then
/// every group's commands, each group followed by DISCARD and the next
/// opened by MULTI, in a second. Refusals go to `refused` under the place
/// of their need; a refused MULTI ends the check there (were it refused,
/// the commands after it would run).
async fn transactions(
    session: &Session,
    target: &Target,
    needs: &[Need],
    groups: &[Group],
    refused: &mut Vec<(usize, Refusal)>,
) -> Result<()> {
    let url = target.url();
    let failed = |e: std::io::Error| {
        Error::redis(
            &target.to_string(),
            "checking the run's permissions",
            redis::RedisError::from(e),
        )
    };
    let named =
        |name: &'static str| (needs.iter().enumerate()).filter(move |(_, n)| n.name() == name);

    let opening = [cmd("MULTI"), cmd("EXEC"), cmd("MULTI")].concat();
    let opened = session.call(opening, 3).await.map_err(failed)?;
    if let Some(reply) = opened.error(0) {
        let mut purposes = vec![OWN.to_string()];
        purposes.extend(named("MULTI").map(|(_, n)| n.needed_for.clone()));
        refused.push((0, refusal("MULTI".into(), purposes.join("; "), reply)));
        return Err(verdict(url, std::mem::take(refused)));
    }
    // Refused, EXEC leaves a transaction open (or ends it: Redis 7 does); the
    // second MULTI opens one or is told it is nested. One is open either way.
    if let Some(reply) = opened.error(1) {
        for (i, need) in named("EXEC") {
            refused.push((
                i,
                refusal("EXEC".into(), need.needed_for.clone(), reply.clone()),
            ));
        }
    }

    let mut packed: Vec<u8> = Vec::new();
    let mut count = 0;
    for (k, group) in groups.iter().enumerate() {
        if k > 0 {
            packed.extend(cmd("MULTI"));
            count += 1;
        }
        packed.extend(group.packed.iter().flatten());
        packed.extend(cmd("DISCARD"));
        count += group.packed.len() + 1;
    }
    let replies = session.call(packed, count).await.map_err(failed)?;
    let mut at = 0;
    for (k, group) in groups.iter().enumerate() {
        if k > 0 {
            if let Some(reply) = replies.error(at) {
                refused.push((needs.len(), refusal("MULTI".into(), OWN.into(), reply)));
            }
            at += 1;
        }
        for &i in &group.needs {
            if let Some(reply) = replies.error(at)
                && !missing_feature(&needs[i], &reply)
            {
                refused.push((
                    i,
                    refusal(shown(&needs[i]), needs[i].needed_for.clone(), reply),
                ));
            }
            at += 1;
        }
        if let Some(reply) = replies.error(at) {
            refused.push((needs.len(), refusal("DISCARD".into(), OWN.into(), reply)));
        }
        at += 1;
    }
    Ok(())
}

fn cmd(name: &str) -> Vec<u8> {
    redis::cmd(name).get_packed_command()
}

fn refusal(command: String, needed_for: String, reply: String) -> Refusal {
    Refusal {
        command,
        needed_for,
        reply,
    }
}

/// A server without XAUTOCLAIM does not know it whoever asks: a missing
/// stream feature, which `check_features` names with its own fix once the
/// features are probed.
fn missing_feature(need: &Need, reply: &str) -> bool {
    let name = need.name();
    reply.starts_with("ERR unknown command")
        && [StreamFeature::Xautoclaim, StreamFeature::GroupLag]
            .iter()
            .any(|f| f.command() == Some(name.as_str()))
}

/// Arguments past this many are left out of a refused command as shown.
const SHOWN_ARGS: usize = 7;
/// An argument longer than this is cut.
const SHOWN_ARG_CHARS: usize = 80;

/// The command as text, its arguments cut short: "XADD sd:r:orders MAXLEN ~ 100000 * sd …".
fn shown(need: &Need) -> String {
    let args = need.args();
    let mut parts: Vec<String> = (args.iter().take(SHOWN_ARGS))
        .map(|a| match a.char_indices().nth(SHOWN_ARG_CHARS) {
            Some((at, _)) => format!("{}…", &a[..at]),
            None => a.clone(),
        })
        .collect();
    if args.len() > SHOWN_ARGS {
        parts.push("…".into());
    }
    parts.join(" ")
}

/// The error for `refused` (each under its place in the run), with the fix.
fn verdict(url: &str, mut refused: Vec<(usize, Refusal)>) -> Error {
    refused.sort_by_key(|(i, _)| *i);
    let refused: Vec<Refusal> = refused.into_iter().map(|(_, r)| r).collect();
    let parsed = redis::parse_redis_url(url);
    let server = (parsed.as_ref())
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(6379))))
        .unwrap_or_else(|| url.to_string());
    let user = (parsed.as_ref())
        .map(|u| u.username())
        .filter(|u| !u.is_empty())
        .unwrap_or("default")
        .to_string();
    let fix = fix(&user, &refused);
    Error::Refused {
        server,
        user,
        refusals: refused,
        fix,
    }
}

/// What to change: the ACL rules that allow what the ACL refused, then what
/// no ACL rule can allow.
fn fix(user: &str, refused: &[Refusal]) -> String {
    let mut rules: Vec<String> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    let add = |list: &mut Vec<String>, item: String| {
        if !list.contains(&item) {
            list.push(item);
        }
    };
    for r in refused {
        let name = r.command.split(' ').next().unwrap_or_default();
        if let Some(command) = denied_command(&r.reply) {
            add(&mut rules, format!("+{command}"));
        } else if r.reply.contains("NOPERM") {
            // A key: every key of every run starts with the prefix.
            add(&mut rules, format!("~{KEY_PREFIX}*"));
        } else if r.reply.contains("enable-debug-command") {
            let why = "DEBUG needs `enable-debug-command yes` (or `local`, for a client on \
                       the same host) in the server's config; a managed server gets it when \
                       a fault needs it";
            add(&mut other, why.into());
        } else if let Some(state) = server_state(&r.reply) {
            // Not a permission: the server refuses everyone now.
            add(&mut other, state.into());
        } else if r.reply.starts_with("ERR unknown command") {
            let why = format!(
                "the server has no {name} (too old, or renamed away with rename-command): run \
                 against a server that has it, or leave out what needs it"
            );
            add(&mut other, why);
        }
    }
    let mut lines = Vec::new();
    if !rules.is_empty() {
        lines.push(format!(
            "To allow it: ACL SETUSER {user} {}",
            rules.join(" ")
        ));
    }
    lines.extend(other);
    lines.push("What each part of a run needs: docs/acl.md".into());
    lines.join("\n")
}

/// What a refusal says of the server's state rather than of the user's
/// rights, with what to do: no ACL rule allows a write to a replica.
fn server_state(reply: &str) -> Option<&'static str> {
    let code = reply.split(' ').next().unwrap_or_default();
    Some(match code {
        "READONLY" => "the URL points at a replica, which takes no writes: point it at the primary",
        "OOM" => {
            "the server is out of memory under a noeviction policy: free memory, raise \
             maxmemory or choose an eviction policy"
        }
        "LOADING" => "the server is still loading its data set: run again once it has",
        "MISCONF" => {
            "the server stopped writes because it cannot persist (stop-writes-on-bgsave-error): \
             fix its disk or its save settings"
        }
        "NOREPLICAS" => {
            "the server has fewer replicas than min-replicas-to-write asks: wait for them or \
             lower the setting"
        }
        "MASTERDOWN" => "the replica lost its primary: run against the primary",
        // A cluster node, asked of a key another node serves.
        "MOVED" | "ASK" | "CROSSSLOT" => {
            "the server is a Redis Cluster node, whose keys live on several nodes: add \
             cluster = {} to [redis] (--set 'redis.cluster={}'), or run again if its slots \
             moved meanwhile (docs/cluster.md, \"External clusters\")"
        }
        "CLUSTERDOWN" => "the cluster is down: run again once CLUSTER INFO says cluster_state:ok",
        _ => return None,
    })
}

/// The command an ACL refused, as ACL rules name it: `client|kill` in
/// "NOPERM this user has no permissions to run the 'client|kill' command"
/// (also inside EXEC's EXECABORT, and in Valkey's wording).
fn denied_command(reply: &str) -> Option<&str> {
    let (_, rest) = reply.split_once("permissions to run the '")?;
    rest.split_once('\'').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_state_is_told_apart_from_a_permission() {
        let refused = [refused(
            "XADD sd:r:a * sd 0:0:0",
            "READONLY You can't write against a read only replica.",
        )];
        let fix = fix("drill", &refused);
        assert!(fix.contains("points at a replica"), "{fix}");
        assert!(!fix.contains("ACL SETUSER"), "{fix}");
    }

    fn refused(command: &str, reply: &str) -> Refusal {
        refusal(command.into(), "x".into(), reply.into())
    }

    #[test]
    fn the_fix_names_the_acl_rules_and_what_no_rule_allows() {
        let refused = [
            refused(
                "CLIENT KILL TYPE normal SKIPME yes",
                "NOPERM this user has no permissions to run the 'client|kill' command",
            ),
            refused(
                "XADD other",
                "NOPERM this user has no permissions to access one of the keys used as arguments",
            ),
            refused(
                "EXEC",
                "EXECABORT Transaction discarded because of: NOPERM this user has no \
                 permissions to run the 'exec' command",
            ),
            refused(
                "DEBUG SLEEP 1.000",
                "ERR DEBUG command not allowed. If the enable-debug-command option is set...",
            ),
            refused(
                "CLIENT PAUSE 1000 ALL",
                "ERR unknown command 'CLIENT', with args beginning with: 'PAUSE'",
            ),
        ];
        let fix = fix("drill", &refused);
        let lines: Vec<&str> = fix.lines().collect();
        assert_eq!(
            lines[0],
            "To allow it: ACL SETUSER drill +client|kill ~sd:* +exec"
        );
        assert!(
            lines[1].starts_with("DEBUG needs `enable-debug-command yes`"),
            "{fix}"
        );
        assert!(
            lines[2].starts_with("the server has no CLIENT (too old"),
            "{fix}"
        );
        assert_eq!(lines[3], "What each part of a run needs: docs/acl.md");
    }

    #[test]
    fn the_error_names_the_server_and_user_without_the_password() {
        let e = verdict(
            "redis://drill:secret@127.0.0.1:7000/2",
            vec![(
                0,
                refused(
                    "INFO server",
                    "NOPERM this user has no permissions to run the 'info' command",
                ),
            )],
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "redis at 127.0.0.1:7000 refuses a command this run needs from user \"drill\""
            ),
            "{text}"
        );
        assert!(text.contains("\n  INFO server (x): NOPERM"), "{text}");
        assert!(text.contains("ACL SETUSER drill +info"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let e = verdict("redis://127.0.0.1:7000", vec![]);
        assert!(matches!(e, Error::Refused { user, .. } if user == "default"));
    }

    #[test]
    fn long_commands_are_cut_short() {
        let mut c = redis::cmd("XADD");
        c.arg("sd:r:orders")
            .arg(&["MAXLEN", "~", "100000", "*", "sd", "0:1:2", "type"]);
        c.arg("x".repeat(90));
        let need = Need {
            packed: c.get_packed_command(),
            needed_for: String::new(),
        };
        assert_eq!(shown(&need), "XADD sd:r:orders MAXLEN ~ 100000 * sd …");
        let mut c = redis::cmd("XADD");
        c.arg("y".repeat(90));
        let need = Need {
            packed: c.get_packed_command(),
            needed_for: String::new(),
        };
        assert_eq!(shown(&need), format!("XADD {}…", "y".repeat(80)));
    }
}
