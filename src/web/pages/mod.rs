//! The server-rendered pages (maud): login, the certificate pages, status, configuration.
