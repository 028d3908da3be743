//! The access simulator (seeded: ~200 principals, 50,000 patients, 30
//! days, 8 kinds of injected incident) read by the adaptive detector and
//! by fixed thresholds on the same records. The adaptive one must reach
//! recall >= 0.95 on the loud scenarios, >= 0.8 on slow exfiltration, and
//! precision >= 0.9; both are printed side by side.

use obscura_alerts::sim::{compare, report, Scenario};
use std::collections::BTreeSet;

#[test]
fn adaptive_rules_beat_fixed_thresholds_on_the_simulated_month() {
    for seed in [1u64, 2] {
        let (sim, ours, fixed) = compare(seed);
        assert!((190..=215).contains(&sim.principals), "{}", sim.principals);
        let kinds: BTreeSet<_> = sim.incidents.iter().map(|i| i.scenario).collect();
        assert_eq!(kinds.len(), Scenario::ALL.len());
        eprint!("{}", report(seed, &sim, &ours, &fixed));
        assert!(
            ours.recall_of(true) >= 0.95,
            "loud recall {}",
            ours.recall_of(true)
        );
        assert!(
            ours.recall_of(false) >= 0.8,
            "slow recall {}",
            ours.recall_of(false)
        );
        assert!(ours.precision() >= 0.9, "precision {}", ours.precision());
        assert!(ours.recall_of(false) > fixed.recall_of(false));
        assert!(ours.precision() > fixed.precision());
    }
}
