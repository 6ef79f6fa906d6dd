//! Moving money between two accounts, all-or-nothing.
//!
//! ```text
//! cargo run --example transaction
//! ```
//!
//! A transfer changes two balances; a crash between the two writes must not
//! lose or create money. `store.transaction(|tx| ...)` runs the closure on a
//! working copy of the state: `Ok` commits every field it changed as one
//! journal record, `Err` (or a panic) rolls all of it back. `store.begin()`
//! / `tx.commit()` does the same by hand; dropping the transaction without
//! `commit()` rolls it back. The example makes a transfer, has one refused
//! for insufficient funds (balances unchanged), makes one with
//! `begin()`/`commit()`, and shows that the journal gained exactly one
//! record per committed transaction. It works in a fresh directory under
//! the system's temp directory, removed at the end.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

/// Two accounts, in cents.
#[derive(Persisted, Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Accounts {
    /// The checking account.
    checking: i64,
    /// The savings account.
    savings: i64,
    /// Transfers made so far.
    transfers: u32,
}

/// Why a transfer did not happen.
#[derive(Debug)]
enum TransferError {
    /// The source account holds less than the amount.
    InsufficientFunds { balance: i64, amount: i64 },
    /// Writing the transaction failed (nothing was applied).
    Store(persisted_state::Error),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::InsufficientFunds { balance, amount } => write!(
                f,
                "insufficient funds: balance {}, transfer {}",
                money(*balance),
                money(*amount)
            ),
            TransferError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransferError {}

/// `store.transaction` needs the closure's error type to hold a store error
/// too (a failed commit).
impl From<persisted_state::Error> for TransferError {
    fn from(e: persisted_state::Error) -> Self {
        TransferError::Store(e)
    }
}

/// Moves `amount` cents from checking to savings, all-or-nothing.
fn transfer_to_savings(store: &Store<Accounts>, amount: i64) -> Result<(), TransferError> {
    store.transaction(|tx| {
        // Debit first, check after: if the check fails, returning `Err`
        // rolls back the debit already made to the working copy.
        tx.checking -= amount;
        if tx.checking < 0 {
            return Err(TransferError::InsufficientFunds {
                balance: tx.checking + amount,
                amount,
            });
        }
        tx.savings += amount;
        tx.transfers += 1;
        Ok(())
    })
}

/// A directory that is removed when dropped (also on an early `?`).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "persisted-transaction-{}-{nanos}",
        std::process::id()
    )));
    std::fs::create_dir(&dir.0)?;
    let path = dir.0.join("accounts.json");
    let journal = {
        let mut name = path.as_os_str().to_owned();
        name.push(".journal");
        PathBuf::from(name)
    };

    let store: Store<Accounts> = Store::open_or(
        &path,
        Accounts {
            checking: dollars(100),
            savings: 0,
            transfers: 0,
        },
    )?;
    show("opened", &store);
    let mut records = count_records(&journal)?;

    // 1. A transfer that succeeds: both balances change in one record.
    transfer_to_savings(&store, dollars(30))?;
    show("\n1. transfer 30.00 to savings", &store);
    records = report_records(&journal, records)?;

    // 2. A transfer that is refused: the closure returns `Err`, the debit
    //    is rolled back, nothing is written.
    let before = store.get();
    match transfer_to_savings(&store, dollars(500)) {
        Err(e @ TransferError::InsufficientFunds { .. }) => {
            println!("\n2. transfer 500.00 to savings: refused ({e})");
        }
        Err(e) => return Err(e.into()),
        Ok(()) => return Err("the transfer should have been refused".into()),
    }
    if store.get() != before {
        return Err("a refused transfer changed the balances".into());
    }
    show("   rolled back, balances unchanged", &store);
    records = report_records(&journal, records)?;

    // 3. The same by hand: `begin()` takes the writer lock and a working
    //    copy; `commit()` writes what changed as one record. Readers keep
    //    seeing the old state until then.
    let mut tx = store.begin();
    let amount = 1_250; // 12.50
    let savings = tx.savings;
    tx.set_savings(savings - amount); // generated setter, on the transaction
    tx.checking += amount;
    tx.transfers += 1;
    println!(
        "\n3. begin(): moving 12.50 back to checking; before commit() readers still see checking {}",
        money(store.read().checking)
    );
    tx.commit()?;
    show("   after commit()", &store);
    records = report_records(&journal, records)?;

    // A transaction dropped without `commit()` is rolled back too.
    {
        let mut tx = store.begin();
        tx.checking = dollars(1_000_000);
    }
    show(
        "\n4. begin() then drop without commit(): rolled back",
        &store,
    );
    report_records(&journal, records)?;

    println!("\nthe journal ({}):", journal.display());
    print!("{}", std::fs::read_to_string(&journal)?);

    // The journal is folded into `accounts.json` at close; reopening gives
    // back the same balances.
    let expected = store.get();
    store.close()?;
    let reopened = Accounts::open(&path)?.get();
    if reopened != expected {
        return Err("the reopened file differs from memory".into());
    }
    println!("\nreopened {}: {reopened:?}", path.display());
    Ok(())
}

/// Prints the balances.
fn show(what: &str, store: &Store<Accounts>) {
    let accounts = store.read();
    println!(
        "{what}: checking {}, savings {}, total {}",
        money(accounts.checking),
        money(accounts.savings),
        money(accounts.checking + accounts.savings)
    );
}

/// Prints how many records the journal gained since `before`; returns the
/// new count.
fn report_records(journal: &Path, before: usize) -> std::io::Result<usize> {
    let now = count_records(journal)?;
    println!(
        "   journal: {now} record(s), +{} for this step",
        now - before
    );
    Ok(now)
}

/// The commit records in a JSON journal: after the header line, each record
/// is a frame line (`@<seq> <len> <crc>`) followed by its payload line.
fn count_records(journal: &Path) -> std::io::Result<usize> {
    Ok(std::fs::read_to_string(journal)?
        .lines()
        .filter(|line| line.starts_with('@'))
        .count())
}

/// Whole dollars in cents.
const fn dollars(dollars: i64) -> i64 {
    dollars * 100
}

/// Cents as `12.34`.
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}
