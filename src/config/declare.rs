//! One declaration per group of settings: `settings!` writes the struct and, from the same list of
//! fields, its `NAMES` (the file keys) and `changed` (which of them differ), so that a new setting
//! is compared on reload and named in logs without a second list to keep.

/// Declares a settings struct with `NAMES` and `changed`.
macro_rules! settings {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[$doc:meta])* pub $field:ident: $ty:ty, )* }) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl $name {
            /// Every setting of this group, by its file key.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The file keys of the settings that differ in `other` (secrets compared too).
            pub fn changed(&self, other: &Self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $( if self.$field != other.$field { names.push(stringify!($field)); } )*
                names
            }
        }
    };
}

pub(super) use settings;
