//! Property tests of file paths from the files API (`?path=`), resolved by
//! init inside the instance: any text gives an absolute path or is refused
//! as invalid, never a panic. (It cannot leave the instance: init resolves
//! it in the instance's own mount namespace, where `/` is the instance's
//! root and `..` stops there.)
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn paths_resolve_to_absolute_ones_or_are_refused(path in prop_oneof![
        any::<String>(),
        "(\\.\\./|/|[a-z.\u{0}]{0,4}){0,8}",
    ]) {
        match resolve(&path, None) {
            Ok(full) => {
                prop_assert!(full.is_absolute());
                prop_assert!(!path.is_empty() && !path.contains('\0'));
                if path.starts_with('/') {
                    prop_assert_eq!(full.as_os_str(), path.as_str());
                } else {
                    prop_assert!(full.starts_with("/root"));
                }
            }
            Err((kind, message)) => {
                prop_assert_eq!(kind, FileErrorKind::InvalidPath);
                prop_assert!(!message.is_empty());
            }
        }
    }
}
