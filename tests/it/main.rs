mod scenarios;
mod support;
mod server;
mod cli;
mod run;
