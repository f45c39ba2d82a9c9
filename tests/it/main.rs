mod cli;
mod drill;
mod proxy;
mod report;
mod run;
mod scenarios;
mod server;
mod support;
