/// A complete line of the followed file.
public struct TailedLine: Sendable {
    /// The line's bytes without its newline, as they are in the file (any bytes but `\n`).
    public var bytes: [UInt8]
    /// Byte offset of the line's first byte.
    public var start: UInt64
    /// Byte offset just after the line's newline (for the unterminated last line of a rotated
    /// file: the file's size).
    public var end: UInt64
    /// 1-based line number in the file (every newline-terminated line counts, skipped ones too).
    public var number: UInt64
    /// The file's fingerprint (lower-case hex SHA-256, see ``Checkpoint/fingerprint``).
    public var fingerprint: String
    /// The producer's identity of the file (``Checkpoint/fileID``).
    public var fileID: String
    /// Where the file was when it was opened.
    public var path: String
}

/// What changed the tailer's position (see ``TailEvent/position(_:_:)``).
public enum TailChange: Sendable, Equatable {
    /// A file was opened at offset 0 with a new identity (the first file without a checkpoint,
    /// or the next file after a rotation).
    case opened
    /// The checkpointed file was found again (at the followed path or a rotated sibling) and
    /// reading continues at the checkpoint's offset.
    case resumed
    /// The current file's fingerprint was fixed; its lines can now be sent.
    case fingerprinted
    /// The file shrank below the read position (or the bytes before it changed) and no copy of
    /// it was found: it is read again from offset 0 as a new file (new identity).
    case truncated
    /// The file was truncated after being copied (`copytruncate`): reading continues, with the
    /// same identity and offsets, in the copy (a rotated sibling with the same bytes), which is
    /// finished before the truncated file is read again from offset 0.
    case copied
}

/// One step of ``FileTailer/next()``.
public enum TailEvent: Sendable {
    /// A line to send.
    case line(TailedLine)
    /// A line longer than the tailer's `maxLineBytes`, not returned; `bytes` is empty and
    /// `end - start` is its length (newline included).
    case tooLong(TailedLine)
    /// The position moved to a new file or identity. Nothing of the new identity has been
    /// returned yet; the producer flushes and checkpoints here.
    case position(Checkpoint, TailChange)
    /// Nothing to do now: at the end of the file, waiting for a newline or for the fingerprint
    /// (fewer than 1 KiB in the file), or (`fileMissing`) waiting for the file to appear.
    case idle(fileMissing: Bool)
}
