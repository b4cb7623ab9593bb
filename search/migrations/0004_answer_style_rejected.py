from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("search", "0003_answer_model_text")]

    operations = [
        migrations.AddField(
            model_name="answer",
            name="style",
            field=models.CharField(
                blank=True,
                choices=[
                    ("extractive", "the posts' own sentences"),
                    ("generative", "the model's supported sentences"),
                    ("mixed", "the posts' sentences, then the model's"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="answer",
            name="cut_short",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="answer",
            name="rejected",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
