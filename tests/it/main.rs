mod cli;
mod run;
mod scenarios;
mod server;
mod support;
mod report;
