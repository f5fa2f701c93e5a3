//! Reporters: the only place that writes findings for users.
