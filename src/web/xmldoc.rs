//! `putxml` bodies: a `<Configuration>` or `<Command>` document read with serde_xml_rs into an
//! ordered tree (elements, `item` attributes, text), with size and depth limits and no DOCTYPE.
