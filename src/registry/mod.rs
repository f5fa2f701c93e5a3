//! Registry access: one small trait, implemented over OCI distribution
//! (HTTP) and over OCI image-layout directories (the embedded default).
