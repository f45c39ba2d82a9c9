// Tests say what they measured on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod accounting;
mod acl;
mod browser;
mod capacity;
mod capacity_report;
mod cli;
mod docs;
mod drill;
mod drill_failover;
mod drill_faults;
mod drill_network;
mod drill_poison;
mod drill_power;
mod drill_server;
mod example;
mod layers;
mod powerfs;
mod proxy;
mod report;
mod run;
mod scenarios;
mod server;
mod servers;
mod support;
mod wire;
