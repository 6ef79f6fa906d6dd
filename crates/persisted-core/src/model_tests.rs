//! T17: model-based testing. Random sequences of writes, reopens, process
//! crashes and power cuts (proptest) run against a store on the simulated
//! disk and against a plain in-memory model; they never diverge.
//! `PERSISTED_PROPTEST_CASES` raises the number of cases for the soak.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use crate::file::vfs::Vfs;
use crate::testing::formats;
use crate::testing::model::{Counter, Items, Model};
use crate::testing::sim::SimFs;
use crate::{Durability, Error, Format, OpenOptions, Store};

#[derive(Debug, Clone)]
enum Action {
    Set(u64),
    Push(String),
    Pop,
    Pair,
    TxPair,
    TxRollback,
    Compact,
    Reopen,
    ProcessCrash,
    PowerCut(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => any::<u64>().prop_map(Action::Set),
        6 => "[a-z\\n\" ]{0,24}".prop_map(Action::Push),
        2 => Just(Action::Pop),
        2 => Just(Action::Pair),
        2 => Just(Action::TxPair),
        1 => Just(Action::TxRollback),
        1 => Just(Action::Compact),
        1 => Just(Action::Reopen),
        1 => Just(Action::ProcessCrash),
        1 => any::<u64>().prop_map(Action::PowerCut),
    ]
}

fn open(sim: &SimFs, path: &Path, options: OpenOptions<Model>) -> Store<Model> {
    Store::open_on(Arc::new(sim.clone()) as Arc<dyn Vfs>, path, options, None)
        .expect("the simulated disk always opens")
}

fn cases() -> u32 {
    crate::testing::soak_size("PERSISTED_PROPTEST_CASES", 2_000)
}

fn check(format: Format, actions: &[Action]) -> Result<(), TestCaseError> {
    let path = PathBuf::from("/model/state");
    let options = Store::<Model>::options()
        .format(format)
        .durability(Durability::Sync)
        .journal_limit(512);
    let mut sim = SimFs::new();
    let mut store = open(&sim, &path, options.clone());
    let mut model = Model::default();
    for (i, action) in actions.iter().enumerate() {
        match action {
            Action::Set(v) if format == Format::Toml && *v > i64::MAX as u64 => {
                // TOML integers are i64: the commit is refused, and neither
                // memory nor disk changes.
                let e = store.__set::<Counter>(*v).unwrap_err();
                prop_assert!(matches!(e, Error::Encode { .. }), "{}", e);
            }
            Action::Set(v) => {
                store.__set::<Counter>(*v).unwrap();
                model.counter = *v;
            }
            Action::Push(s) => {
                store.__push::<Items>(s.clone()).unwrap();
                model.items.push(s.clone());
            }
            Action::Pop => {
                prop_assert_eq!(store.__pop::<Items>().unwrap(), model.items.pop());
            }
            Action::Pair => {
                store
                    .update(|m| {
                        m.a += 1;
                        m.b += 2;
                    })
                    .unwrap();
                model.a += 1;
                model.b += 2;
            }
            Action::TxPair => {
                store
                    .transaction(|tx| {
                        tx.a += 3;
                        tx.items.push("tx".into());
                        Ok::<_, Error>(())
                    })
                    .unwrap();
                model.a += 3;
                model.items.push("tx".into());
            }
            Action::TxRollback => {
                let mut tx = store.begin();
                tx.counter = u64::MAX;
                drop(tx);
            }
            Action::Compact => store.compact().unwrap(),
            Action::Reopen => {
                drop(store);
                store = open(&sim, &path, options.clone());
            }
            Action::ProcessCrash => {
                let image = sim.process_crash_image();
                drop(store);
                sim = SimFs::from_image(&image);
                store = open(&sim, &path, options.clone());
            }
            Action::PowerCut(seed) => {
                let image = sim.power_loss_image(*seed);
                drop(store);
                sim = SimFs::from_image(&image);
                store = open(&sim, &path, options.clone());
            }
        }
        prop_assert_eq!(
            &store.get(),
            &model,
            "{:?} after action {}: {:?}",
            format,
            i,
            action
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_writes_reopens_and_crashes_never_diverge_from_the_model(
        which in 0usize..formats().len(),
        actions in prop::collection::vec(action(), 1..100)
    ) {
        let formats = formats();
        check(formats[which % formats.len()], &actions)?;
    }
}
