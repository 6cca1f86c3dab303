//! One declaration per group of settings. `given!` writes the struct of what flags, environment
//! and file give with its layering (`over`); `settings!` writes a struct of validated settings
//! and, from the same list of fields, its `NAMES` (the file keys) and `changed` (which of them
//! differ), so that a new setting is compared on reload and named in logs without a second list.

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

/// Declares the struct of given settings (every field an `Option`) with `over`, which layers it
/// over a lower one field by field.
macro_rules! given {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[$attr:meta])* pub $field:ident: $ty:ty, )* }) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$attr])* pub $field: $ty, )*
        }

        impl $name {
            /// Each setting from `self` where it is set, otherwise from `lower`.
            pub fn over(self, lower: Self) -> Self {
                Self { $( $field: self.$field.or(lower.$field), )* }
            }
        }
    };
}

pub(super) use {given, settings};
