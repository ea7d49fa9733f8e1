//! `getxml`/`putxml` over HTTP Basic: documents in and out, one transaction per `putxml`.
