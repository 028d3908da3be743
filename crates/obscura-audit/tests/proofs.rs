//! Property tests of the RFC 9162 proofs: every honest proof verifies, and
//! any change to the proof, the leaf, the index, the sizes or the roots is refused.

use obscura_audit::merkle::{leaf_hash, Tree};
use obscura_audit::{verify_consistency, verify_inclusion, Hash};
use proptest::prelude::*;

fn tree(n: u64) -> Tree {
    Tree::from_leaves((0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect())
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8 % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn inclusion(n in 1u64..300, i in 0u64..300, size_back in 0u64..300, which in 0usize..64, bit in 0usize..256) {
        let t = tree(n);
        let size = n - size_back % n;
        let i = i % size;
        let root = t.root(size).unwrap();
        let leaf = t.leaf(i).unwrap();
        let proof = t.inclusion_proof(i, size).unwrap();
        prop_assert!(verify_inclusion(&leaf, i, size, &proof, &root).is_ok());
        // wrong leaf, root, index, size
        prop_assert!(verify_inclusion(&flip(&leaf, bit), i, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, i, size, &proof, &flip(&root, bit)).is_err());
        if size > 1 {
            prop_assert!(verify_inclusion(&leaf, (i + 1) % size, size, &proof, &root).is_err());
        }
        // (the size itself is bound by the signed checkpoint, not by the path:
        // a left leaf's path can be the same for two sizes)
        prop_assert!(verify_inclusion(&leaf, size, size, &proof, &root).is_err());
        // a changed, dropped or added hash
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_inclusion(&leaf, i, size, &bad, &root).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_inclusion(&leaf, i, size, &short, &root).is_err());
        }
        let mut long = proof.clone();
        long.push(root);
        prop_assert!(verify_inclusion(&leaf, i, size, &long, &root).is_err());
    }

    #[test]
    fn consistency(n in 1u64..300, m in 0u64..300, which in 0usize..64, bit in 0usize..256) {
        let t = tree(n);
        let m = m % (n + 1);
        let (old_root, new_root) = (t.root(m).unwrap(), t.root(n).unwrap());
        let proof = t.consistency_proof(m, n).unwrap();
        prop_assert!(verify_consistency(m, n, &old_root, &new_root, &proof).is_ok());
        if m > 0 {
            prop_assert!(verify_consistency(m, n, &flip(&old_root, bit), &new_root, &proof).is_err());
            prop_assert!(verify_consistency(m, n, &old_root, &flip(&new_root, bit), &proof).is_err());
        }
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_consistency(m, n, &old_root, &new_root, &bad).is_err());
            let mut short = proof.clone();
            short.pop();
            prop_assert!(verify_consistency(m, n, &old_root, &new_root, &short).is_err());
        }
        // a history that differs in one leaf before m is never consistent
        if m > 0 {
            let mut leaves: Vec<Hash> = (0..n).map(|i| t.leaf(i).unwrap()).collect();
            let k = which as u64 % m;
            leaves[k as usize] = flip(&leaves[k as usize], bit);
            let forked = Tree::from_leaves(leaves);
            let fproof = forked.consistency_proof(m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &old_root, &forked.root(n).unwrap(), &fproof).is_err());
        }
        if m < n {
            prop_assert!(verify_consistency(n, m, &new_root, &old_root, &proof).is_err());
        }
    }
}
