//! jsxapi's WebSocket at `/ws`: the `auth-…` sub-protocol, JSON-RPC 2.0, feedback notifications.
