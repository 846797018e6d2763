using System.Buffers;
using System.Runtime.InteropServices;

namespace ParamDb.Client.Internal;

/// <summary>
/// Views a <see cref="Memory{T}"/> of an unmanaged type as its bytes, so a reply's values are read from the
/// socket straight into the caller's floats and a request's keys and values are written from the caller's
/// arrays, with no staging copy. <c>Reset</c> re-targets it, so one instance per reader or writer loop
/// serves every request without an allocation each.
/// </summary>
internal sealed unsafe class MemoryBytes<T> : MemoryManager<byte> where T : unmanaged
{
    private Memory<T> _items;

    /// <summary>Views <paramref name="items"/>.</summary>
    public MemoryBytes(Memory<T> items) => _items = items;

    /// <summary>Views <paramref name="items"/> from now on; the caller must be done with the previous <see cref="MemoryManager{T}.Memory"/>.</summary>
    public MemoryBytes<T> Reset(Memory<T> items)
    {
        _items = items;
        return this;
    }

    /// <summary>Views read-only items; only ever read through, never written.</summary>
    public MemoryBytes<T> Reset(ReadOnlyMemory<T> items) => Reset(MemoryMarshal.AsMemory(items));

    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(_items.Span);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        MemoryHandle inner = _items.Pin();
        return new MemoryHandle((byte*)inner.Pointer + elementIndex, default, new Unpinner(inner));
    }

    public override void Unpin()
    {
        // Each Pin hands out its own Unpinner, which releases that pin; nothing is held here.
    }

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Unpinner(MemoryHandle inner) : IPinnable
    {
        private MemoryHandle _inner = inner;

        public MemoryHandle Pin(int elementIndex) => throw new NotSupportedException();

        public void Unpin() => _inner.Dispose();
    }
}
