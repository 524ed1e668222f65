//! The WeCom simulator: same paths, parameters, JSON field names, error codes and expiries as
//! WeCom's real API (`../shared/wecom-api.md`), for the demo and the tests.
