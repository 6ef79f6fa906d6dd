//! A valid TOML snapshot (from `seed_files`) with a fuzzed journal (JSON lines) beside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use persisted_state_core::Format;

fuzz_target!(|data: &[u8]| persisted_fuzz::journal(Format::Toml, data));
