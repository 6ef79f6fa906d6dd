//! The commands. Each returns the exit code, or a message for exit 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use persisted_state_core::__tool::{self, StoreLock};
use persisted_state_core::{Error, Format};

use crate::dynamic::{self, format_of, needs_type};
use crate::files::{parse_snapshot, read, History, Pairing, RecordFile, Store};

pub type Outcome = Result<ExitCode, String>;

fn text_format(format: Format) -> Result<(), String> {
    match format {
        Format::Json | Format::Yaml | Format::Toml => Ok(()),
        _ => Err(needs_type(format)),
    }
}

pub fn print(bytes: &[u8]) -> Outcome {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

pub fn parse_time(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!("`{text}` is not an RFC 3339 time ({e}), e.g. 2026-11-29T10:00:00Z")
    })?;
    Ok(time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub fn show(file: &Path, at: Option<u64>, as_of: Option<&str>, output: Option<Format>) -> Outcome {
    let format = format_of(file)?;
    text_format(format)?;
    let store = Store::read(file, format)?;
    let state = match (at, as_of) {
        (Some(seq), _) => History::read(&store)?.state_at(format, seq)?,
        (None, Some(time)) => History::read(&store)?.state_as_of(format, parse_time(time)?)?,
        (None, None) => store.current()?,
    };
    print(&dynamic::encode(output.unwrap_or(format), &state)?)
}

/// What a commit changed: `set a, push b` from its payload, or from the
/// frame's fields list when the payload needs the type.
fn changes(file: &RecordFile, format: Format, record: &__tool::Record) -> Vec<(String, String)> {
    if format != Format::Bincode {
        if let Ok(entries) = file.entries(format, record) {
            return entries
                .0
                .into_iter()
                .filter_map(|(key, _)| {
                    let (op, field) = key.split_once(' ')?;
                    Some((op.to_string(), field.to_string()))
                })
                .collect();
        }
    }
    record
        .fields
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|e| e.len() > 1)
        .map(|e| {
            let op = if e.starts_with('=') { "set" } else { "change" };
            (op.to_string(), e[1..].to_string())
        })
        .collect()
}

pub fn log(file: &Path, fields: &[String], limit: Option<usize>) -> Outcome {
    let format = format_of(file)?;
    let store = Store::read(file, format)?;
    let history = History::read(&store)?;
    let mut out = String::new();
    let mut shown = 0;
    for commit in history.commits.iter().rev() {
        if limit.is_some_and(|n| shown >= n) {
            break;
        }
        let records = &history.files[commit.file];
        let record = &records.records.records[commit.record];
        let changes = changes(records, format, record);
        if !fields.is_empty() && !changes.iter().any(|(_, f)| fields.contains(f)) {
            continue;
        }
        out.push_str(&log_line(commit.seq, record.time_ms, &changes));
        shown += 1;
    }
    print(out.as_bytes())
}

/// One line of `log`: sequence number, time, what changed.
pub fn log_line(seq: u64, time_ms: Option<u64>, changes: &[(String, String)]) -> String {
    let what: Vec<String> = changes.iter().map(|(op, f)| format!("{op} {f}")).collect();
    let time = match time_ms {
        Some(ms) => format_time(ms),
        None => "(no time: first file format)".to_string(),
    };
    format!("{seq:>8}  {time}  {}\n", what.join(", "))
}

/// Problems (exit 1) and notes (what a crash leaves; fine) of `verify`.
#[derive(Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    /// Prints the notes and problems; exit 1 when there is a problem.
    pub fn finish(self, name: &str) -> Outcome {
        for note in &self.notes {
            println!("note: {note}");
        }
        for problem in &self.problems {
            println!("problem: {problem}");
        }
        if self.problems.is_empty() {
            println!("{name}: ok");
            Ok(ExitCode::SUCCESS)
        } else {
            println!("{name}: {} problem(s)", self.problems.len());
            Ok(ExitCode::from(1))
        }
    }
}

/// Checks one file of records: header, frames, sequence, payloads.
fn verify_records(file: &RecordFile, format: Format, report: &mut Report, live: bool) {
    let path = file.path.display();
    let Some(header) = file.records.header else {
        if file.bytes.is_empty() {
            return;
        }
        if file.records.cut_header && live {
            report.notes.push(format!(
                "{path}: cut inside its header (what a crash leaves); the next open sets it aside"
            ));
        } else {
            report
                .problems
                .push(format!("{path}: offset 0: the header does not verify"));
        }
        return;
    };
    if header.format != format {
        report.problems.push(format!(
            "{path}: holds {:?} records, the store is {format:?}",
            header.format
        ));
        return;
    }
    if file.records.valid_end < file.bytes.len() {
        let at = file.position(format, file.records.valid_end);
        let rest = file.bytes.len() - file.records.valid_end;
        if file.records.continuing_later > 0 {
            report.problems.push(format!(
                "{at}: damaged record followed by {} valid record(s) that continue the \
                 sequence ({rest} bytes from here); `persisted repair` sets them aside",
                file.records.continuing_later
            ));
        } else if live {
            report.notes.push(format!(
                "{at}: torn tail of {rest} bytes (what a crash leaves); the next open cuts it"
            ));
        } else {
            report
                .problems
                .push(format!("{at}: {rest} bytes after the last valid record"));
        }
    }
    // An encrypted store's records: a good checksum with a bad tag is
    // damage or another key's record, never a torn tail (for the text
    // formats `entries` below opens them and says so).
    if __tool::is_sealed(&file.bytes) && format == Format::Bincode {
        for record in file.commits() {
            if let Err(e) = file.payload(record) {
                report.problems.push(e);
            }
        }
    }
    if format != Format::Bincode {
        for record in file.commits() {
            if let Err(e) = file.entries(format, record) {
                report.problems.push(e);
            }
        }
    }
}

pub fn verify(file: &Path) -> Outcome {
    let format = format_of(file)?;
    let store = Store::read(file, format)?;
    let mut report = Report::default();
    let snapshot_ok = match format {
        Format::Bincode => __tool::check_bincode_snapshot(file, &store.snapshot)
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => parse_snapshot(file, format, &store.snapshot).map(drop),
    };
    if let Err(e) = snapshot_ok {
        report.problems.push(e);
    }
    if let Some(journal) = &store.journal {
        verify_records(journal, format, &mut report, true);
        match store.pairing {
            Some(Pairing::Stale) => report.notes.push(format!(
                "{}: already folded into the snapshot (a compaction was cut short); the next \
                 open resets it",
                journal.path.display()
            )),
            Some(Pairing::Orphaned) => report.notes.push(format!(
                "{}: belongs to an earlier snapshot (the snapshot was edited after a crash); \
                 the next open keeps the edit and sets the journal aside",
                journal.path.display()
            )),
            Some(Pairing::Applies) if format != Format::Bincode && report.problems.is_empty() => {
                if let Err(e) = store.current() {
                    report.problems.push(e);
                }
            }
            _ => {}
        }
    }
    let segments = __tool::history_files(file).map_err(|e| e.to_string())?;
    for (i, (_, records, checkpoint)) in segments.iter().enumerate() {
        let Some(segment) = RecordFile::read(records.clone(), checkpoint.clone())? else {
            continue;
        };
        // Only the newest may end in what a cut-short compaction left.
        verify_records(&segment, format, &mut report, i + 1 == segments.len());
        let base = read(checkpoint)?;
        match (base, segment.records.header) {
            (None, _) => report
                .problems
                .push(format!("{}: missing", checkpoint.display())),
            (Some(bytes), Some(header)) if __tool::fingerprint(&bytes) != header.base => {
                report.problems.push(format!(
                    "{}: not the state `{}` applies to",
                    checkpoint.display(),
                    records.display()
                ))
            }
            _ => {}
        }
    }
    report.finish(&file.display().to_string())
}

/// Takes the store's lock, or says who holds it.
fn lock(file: &Path) -> Result<StoreLock, String> {
    match __tool::lock(file) {
        Ok(lock) => Ok(lock),
        Err(Error::Locked { holder, .. }) => Err(format!(
            "refused: a program has `{}` open ({holder} mode: its lock `{}.lock` is held); \
             close it first, or use `show`, `log` and `verify`, which need no lock",
            file.display(),
            file.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub fn compact(file: &Path) -> Outcome {
    let format = format_of(file)?;
    text_format(format)?;
    let _lock = lock(file)?;
    let store = Store::read(file, format)?;
    let records = store.journal.as_ref().map_or(0, |j| j.commits().count());
    if store.pairing != Some(Pairing::Applies) || records == 0 {
        println!("{}: nothing to compact", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let state = store.current()?;
    let bytes = dynamic::encode(format, &state)?;
    let (bytes, sealing) = sealed_as_store(&store, bytes);
    __tool::replace_snapshot(&_lock, file, format, &bytes, sealing.as_deref())
        .map_err(|e| e.to_string())?;
    println!(
        "{}: folded {records} commit(s) into the snapshot",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn edit(file: &Path) -> Outcome {
    let format = format_of(file)?;
    text_format(format)?;
    let lock = lock(file)?;
    let store = Store::read(file, format)?;
    let before = match store.pairing {
        Some(Pairing::Applies)
            if store
                .journal
                .as_ref()
                .is_some_and(|j| j.commits().count() > 0) =>
        {
            dynamic::encode(format, &store.current()?)?
        }
        _ => crate::sealed::snapshot(file, &store.snapshot)?.into_owned(),
    };
    // An encrypted store's draft is plaintext: it goes to a private
    // directory, never beside the store (a synced folder, a backup).
    let private = match __tool::is_sealed(&store.snapshot) {
        true => Some(private_dir()?),
        false => None,
    };
    let draft = new_draft(file, private.as_deref(), &before)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&draft)
        .status()
        .map_err(|e| format!("cannot run the editor `{editor}`: {e}"))?;
    let after =
        std::fs::read(&draft).map_err(|e| format!("cannot read `{}`: {e}", draft.display()))?;
    if !status.success() {
        if after == before {
            let _ = std::fs::remove_file(&draft);
            return Err(format!(
                "the editor `{editor}` failed ({status}); nothing changed"
            ));
        }
        return Err(format!(
            "the editor `{editor}` failed ({status}); nothing changed, what it saved is kept \
             at `{}`",
            draft.display()
        ));
    }
    if after == before {
        let _ = std::fs::remove_file(&draft);
        println!("{}: no changes", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = dynamic::parse_snapshot(format, &after) {
        return Err(format!(
            "refused: the edit does not parse ({}:{e}); nothing changed, your edit is kept \
             at `{}`",
            draft.display(),
            draft.display()
        ));
    }
    let (sealed_after, sealing) = sealed_as_store(&store, after);
    __tool::replace_snapshot(&lock, file, format, &sealed_after, sealing.as_deref()).map_err(
        |e| {
            format!(
                "{e}; nothing changed, your edit is kept at `{}`",
                draft.display()
            )
        },
    )?;
    let _ = std::fs::remove_file(&draft);
    println!("{}: replaced with your edit", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `plain` sealed as the store's snapshot when the store is encrypted,
/// with what seals its new journal.
fn sealed_as_store(
    store: &Store,
    plain: Vec<u8>,
) -> (Vec<u8>, Option<std::sync::Arc<__tool::Unlocked>>) {
    match crate::sealed::current().filter(|_| __tool::is_sealed(&store.snapshot)) {
        Some(unlocked) => (unlocked.seal_snapshot(&plain), Some(unlocked)),
        None => (plain, None),
    }
}

/// A new directory only its owner can enter, for an encrypted store's
/// plaintext draft; kept (it is not removed with the draft it holds).
fn private_dir() -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix("persisted-edit-")
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| format!("cannot make a private directory for the draft: {e}"))
}

/// Writes `bytes` to a new draft beside the store (or in `dir`),
/// `state.json.edit-<unix time>-<n>.json` (the extension the editor
/// highlights by), never over an existing file: a draft kept from an
/// earlier edit is never overwritten. Readable by its owner only.
fn new_draft(file: &Path, dir: Option<&Path>, bytes: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let plain_name = file.with_extension("");
    let ext = match file.extension().is_some_and(|e| e == "enc") {
        true => plain_name.extension(),
        false => file.extension(),
    }
    .unwrap_or_default()
    .to_string_lossy();
    for n in 1u32.. {
        let draft_name = format!("{name}.edit-{secs}-{n}.{ext}");
        let draft = match dir {
            Some(dir) => dir.join(draft_name),
            None => file.with_file_name(draft_name),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&draft) {
            Ok(mut out) => {
                out.write_all(bytes)
                    .map_err(|e| format!("cannot write `{}`: {e}", draft.display()))?;
                return Ok(draft);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create `{}`: {e}", draft.display())),
        }
    }
    Err(format!(
        "no free name for a draft beside `{}`",
        file.display()
    ))
}

pub fn convert(file: &Path, out: &Path) -> Outcome {
    let format = format_of(file)?;
    text_format(format)?;
    let out_format = format_of(out)?;
    text_format(out_format)?;
    let _lock = lock(file)?;
    if out.exists() || __tool::journal_of(out).exists() {
        return Err(format!(
            "refused: `{}` exists; convert writes a new store",
            out.display()
        ));
    }
    let store = Store::read(file, format)?;
    if __tool::is_sealed(&store.snapshot) {
        return Err(format!(
            "refused: `{}` is encrypted, and the new store would be plain text; `persisted \
             show --json` prints it decrypted",
            file.display()
        ));
    }
    let state = store.current()?;
    let bytes = dynamic::encode(out_format, &state)?;
    let temp = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, out)) {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("cannot write `{}`: {e}", out.display()));
    }
    println!(
        "{}: written as {out_format:?} from {} ({format:?})",
        out.display(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn repair(file: &Path) -> Outcome {
    let format = format_of(file)?;
    let lock = lock(file)?;
    let store = Store::read(file, format)?;
    let Some(journal) = &store.journal else {
        println!("{}: no journal, nothing to repair", file.display());
        return Ok(ExitCode::SUCCESS);
    };
    let path = &journal.path;
    if journal.records.header.is_none() && !journal.bytes.is_empty() {
        let kept = __tool::set_aside(&lock, path).map_err(|e| e.to_string())?;
        println!(
            "{}: the header does not verify; the whole journal ({} bytes) is set aside to `{}`; \
             the store opens as its snapshot alone",
            path.display(),
            journal.bytes.len(),
            kept.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if journal.records.continuing_later == 0 {
        println!("{}: no damage, nothing to repair", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let at = journal.records.valid_end;
    let position = journal.position(format, at);
    let last_good = journal.records.records.last().map(|r| r.seq);
    let kept = __tool::set_aside_from(&lock, path, at as u64).map_err(|e| e.to_string())?;
    println!(
        "{position}: set aside {} bytes from offset {at} (the damaged record and {} valid \
         record(s) after it) to `{}`; the store now holds commits up to {}",
        journal.bytes.len() - at,
        journal.records.continuing_later,
        kept.display(),
        last_good.map_or("its snapshot".to_string(), |s| format!("seq {s}")),
    );
    Ok(ExitCode::SUCCESS)
}
