//! The suites' shared kit: `TestApp::spawn` over the binary's own wiring, and the client
//! helpers (gatehouse-testkit-app).

pub use gatehouse_testkit_app::*;
