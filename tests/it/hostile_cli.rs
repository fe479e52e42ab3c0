//! Hostile input and a hostile machine: files that lie about what they are, control characters, races and links.
