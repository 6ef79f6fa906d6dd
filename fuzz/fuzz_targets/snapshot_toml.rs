//! A fuzzed TOML snapshot, alone or beside the seed journal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use persisted_state_core::Format;

fuzz_target!(|data: &[u8]| persisted_fuzz::snapshot(Format::Toml, data));
