namespace ParamDb.Storage;

/// <summary>
/// Byte layout of one stored row: the FASTER <c>SpanByte</c> value of its record. Every row of a table has the
/// same length, fixed by dim and updater, so an RMW never changes a record's size.
/// <code>
/// offset        size    field
/// 0             4       SpanByte length header (FASTER's) = payload bytes
/// 4             4·dim   w  row values: the only part a pull returns
/// 4 + 4·dim     4·dim   adagrad: a, squared-gradient accumulator | adam: m, first moment
/// 4 + 8·dim     4·dim   adam: v, second moment
/// 4 + 12·dim    4       adam: t, int32 step count of this row
/// </code>
/// Offsets below are relative to the payload (after the header). All float32/int32 little-endian.
/// </summary>
internal readonly struct RowLayout
{
    /// <summary>FASTER record header (RecordInfo, 8) + <see cref="RowKey"/> (16) + SpanByte length (4).</summary>
    private const int RecordOverhead = 8 + 16 + 4;

    public RowLayout(int dim, int stateVectors, bool hasStep)
    {
        Dim = dim;
        StateVectors = stateVectors;
        HasStep = hasStep;
    }

    /// <summary>Floats per row.</summary>
    public int Dim { get; }

    /// <summary>Optimizer-state vectors of dim floats after the row: 0 (assign, add, sgd), 1 (adagrad), 2 (adam).</summary>
    public int StateVectors { get; }

    /// <summary>Whether an int32 step counter ends the payload (adam).</summary>
    public bool HasStep { get; }

    /// <summary>Payload bytes: values plus optimizer state. dim 64 with adam: 64·4·3 + 4 = 772.</summary>
    public int PayloadBytes => Dim * sizeof(float) * (1 + StateVectors) + (HasStep ? sizeof(int) : 0);

    /// <summary>Log space of one record, rounded up to FASTER's 8-byte record alignment. dim 64, add: 288.</summary>
    public int RecordBytes => (RecordOverhead + PayloadBytes + 7) & ~7;

    /// <summary>Byte offset of the step counter in the payload.</summary>
    public int StepOffset => Dim * sizeof(float) * (1 + StateVectors);
}
