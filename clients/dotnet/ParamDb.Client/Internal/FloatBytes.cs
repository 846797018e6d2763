using System.Buffers;
using System.Runtime.InteropServices;

namespace ParamDb.Client.Internal;

/// <summary>
/// Views a <see cref="Memory{T}"/> of floats as its bytes, so a reply's values section is read from the
/// socket (or the LZ4 decoder) straight into the caller's destination, with no staging copy.
/// </summary>
internal sealed unsafe class FloatBytes(Memory<float> floats) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(floats.Span);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        MemoryHandle inner = floats.Pin();
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
