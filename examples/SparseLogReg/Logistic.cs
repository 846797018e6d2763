namespace ParamDb.Examples.SparseLogReg;

/// <summary>
/// Log loss and its gradient for logistic regression on binary features: p = sigmoid(w · x), loss = -log P(y | x).
/// </summary>
internal static class Logistic
{
    /// <summary>1 / (1 + e^-m).</summary>
    public static double Sigmoid(double margin) => 1.0 / (1.0 + Math.Exp(-margin));

    /// <summary>
    /// -log P(y | margin) = log(1 + e^m) - y·m, written so that neither e^m nor log(0) overflows for large |m|.
    /// </summary>
    public static double LogLoss(double margin, int label)
    {
        double softplus = margin > 0 ? margin + Math.Log(1.0 + Math.Exp(-margin)) : Math.Log(1.0 + Math.Exp(margin));
        return softplus - label * margin;
    }

    /// <summary>
    /// The summed log loss of the batch at <see cref="Minibatch.Weights"/>, and the gradient of the mean loss written
    /// into <see cref="Minibatch.Gradient"/>: for each key, Σ (p_i - y_i) over the examples that have it, divided by
    /// the batch size.
    /// </summary>
    public static double LossAndGradient(Minibatch batch)
    {
        ReadOnlySpan<float> w = batch.Weights.Span;
        Span<float> g = batch.Gradient.Span;
        g.Clear();
        ReadOnlySpan<int> positions = batch.Positions;
        double loss = 0;
        float scale = 1f / batch.Size;
        int n = 0;
        foreach (int i in batch.Examples)
        {
            int active = batch.Data.Features(i).Length;
            ReadOnlySpan<int> at = positions.Slice(n, active);
            n += active;
            double margin = 0;
            foreach (int k in at) margin += w[k];
            int y = batch.Data.Label(i);
            loss += LogLoss(margin, y);
            float residual = (float)(Sigmoid(margin) - y) * scale;
            foreach (int k in at) g[k] += residual;
        }
        return loss;
    }

    /// <summary>The mean log loss of the batch at <see cref="Minibatch.Weights"/> (no gradient).</summary>
    public static double MeanLoss(Minibatch batch)
    {
        ReadOnlySpan<float> w = batch.Weights.Span;
        ReadOnlySpan<int> positions = batch.Positions;
        double loss = 0;
        int n = 0;
        foreach (int i in batch.Examples)
        {
            int active = batch.Data.Features(i).Length;
            double margin = 0;
            foreach (int k in positions.Slice(n, active)) margin += w[k];
            n += active;
            loss += LogLoss(margin, batch.Data.Label(i));
        }
        return loss / batch.Size;
    }
}
